//! What `#[memoize]` needs to know of the function it caches, and the signatures it refuses,
//! each with the reason: a signature it cannot support is a compile error, never a cache that
//! quietly misbehaves.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{
    FnArg, GenericArgument, GenericParam, ItemFn, Lifetime, ParenthesizedGenericArguments, Pat,
    PatIdent, PatType, PathArguments, Receiver, ReturnType, Signature, Type, TypeBareFn,
    TypeImplTrait, TypeInfer, TypeReference, parse_quote,
    visit_mut::{self, VisitMut},
};

/// A function `#[memoize]` can cache, taken apart.
pub(crate) struct Function {
    /// The function as written.
    pub(crate) item: ItemFn,
    /// `self`, `&self`, `self: Arc<Self>`, ... for a method.
    pub(crate) receiver: Option<Receiver>,
    /// The arguments after the receiver, in order.
    pub(crate) arguments: Vec<Argument>,
    pub(crate) output: Output,
}

/// One argument: a plain name and its type.
pub(crate) struct Argument {
    pub(crate) name: syn::Ident,
    pub(crate) ty: Type,
    pub(crate) passing: Passing,
}

/// How an argument is passed, which decides how the default key holds it.
pub(crate) enum Passing {
    /// By value: the key holds it as is.
    Owned,
    /// As `&T`: the key holds `<T as ToOwned>::Owned` (`String` for `&str`). Holds `T`.
    Borrowed(Box<Type>),
}

/// What the function returns, and so what the cache holds.
pub(crate) enum Output {
    /// Any type but `Result<T, E>` (`()` for none): cached as is.
    Value(Box<Type>),
    /// `Result<T, E>`: only `Ok` values are cached; an `Err` reaches the callers, cloned.
    Fallible { ok: Box<Type>, error: Box<Type> },
}

/// What a type is in a cache: the cache's `static` names it in this role.
#[derive(Clone, Copy)]
pub(crate) enum Role {
    Key,
    Value,
    Error,
}

impl Function {
    /// Takes `item` apart, refusing what `#[memoize]` cannot support.
    pub(crate) fn check(item: ItemFn) -> syn::Result<Self> {
        refuse_qualifiers(&item.sig)?;
        refuse_generics(&item.sig)?;
        let mut receiver = None;
        let mut arguments = Vec::new();
        for input in &item.sig.inputs {
            match input {
                FnArg::Receiver(found) => {
                    check_receiver(found)?;
                    receiver = Some(found.clone());
                }
                FnArg::Typed(typed) => arguments.push(Argument::check(typed)?),
            }
        }
        let output = Output::of(&item.sig.output)?;
        Ok(Self {
            item,
            receiver,
            arguments,
            output,
        })
    }

    /// Whether it is an `async fn`.
    pub(crate) fn is_async(&self) -> bool {
        self.item.sig.asyncness.is_some()
    }
}

fn refuse_qualifiers(sig: &Signature) -> syn::Result<()> {
    if let Some(constness) = &sig.constness {
        return Err(syn::Error::new_spanned(
            constness,
            "memoize: a `const fn` cannot be memoized: its calls at compile time could not \
             reach a cache",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        return Err(syn::Error::new_spanned(
            unsafety,
            "memoize: an `unsafe fn` cannot be memoized; memoize a safe function that calls it",
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(syn::Error::new_spanned(
            abi,
            "memoize: an `extern` fn cannot be memoized; memoize a Rust function that calls it",
        ));
    }
    Ok(())
}

/// Lifetime parameters are fine; type and const parameters are not.
fn refuse_generics(sig: &Signature) -> syn::Result<()> {
    for param in &sig.generics.params {
        if let GenericParam::Type(_) | GenericParam::Const(_) = param {
            return Err(syn::Error::new_spanned(
                param,
                "memoize: generic functions cannot be memoized: one static cache cannot hold \
                 every instantiation (lifetime parameters are fine)",
            ));
        }
    }
    Ok(())
}

fn check_receiver(receiver: &Receiver) -> syn::Result<()> {
    // `&mut self` is also `ty = &mut Self`; `self: Pin<&mut Self>` only shows in `ty`.
    if TypeParts::of(&receiver.ty).mutable_borrow.is_some() {
        return Err(syn::Error::new_spanned(
            receiver,
            "memoize: `&mut self` methods cannot be memoized: a cached call would skip the \
             body's writes through it",
        ));
    }
    Ok(())
}

impl Argument {
    fn check(typed: &PatType) -> syn::Result<Self> {
        let Pat::Ident(PatIdent {
            by_ref: None,
            subpat: None,
            ident,
            ..
        }) = &*typed.pat
        else {
            return Err(syn::Error::new_spanned(
                &typed.pat,
                "memoize: argument patterns are not supported: the key is made of the \
                 arguments by name; name the argument and destructure it in the body",
            ));
        };
        let parts = TypeParts::of(&typed.ty);
        if let Some(impl_trait) = parts.impl_trait {
            return Err(syn::Error::new_spanned(
                impl_trait,
                "memoize: `impl Trait` arguments are not supported: they make the function \
                 generic, and one static cache cannot hold every instantiation",
            ));
        }
        if let Some(mutable_borrow) = parts.mutable_borrow {
            return Err(syn::Error::new_spanned(
                mutable_borrow,
                "memoize: `&mut` arguments are not supported: a cached call would skip the \
                 body's writes through it",
            ));
        }
        let passing = match without_groups(&typed.ty) {
            Type::Reference(reference) => Passing::Borrowed(reference.elem.clone()),
            _ => Passing::Owned,
        };
        Ok(Self {
            name: ident.clone(),
            ty: (*typed.ty).clone(),
            passing,
        })
    }
}

/// `ty` without the parentheses and invisible groups (from `macro_rules!`) around it.
fn without_groups(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => without_groups(&group.elem),
        Type::Paren(paren) => without_groups(&paren.elem),
        other => other,
    }
}

impl Output {
    fn of(output: &ReturnType) -> syn::Result<Self> {
        let ty = match output {
            ReturnType::Default => return Ok(Output::Value(Box::new(parse_quote!(())))),
            ReturnType::Type(_, ty) => &**ty,
        };
        let as_is = || Ok(Output::Value(Box::new(ty.clone())));
        let Type::Path(path) = without_groups(ty) else {
            return as_is();
        };
        let last = match path.path.segments.last() {
            Some(last) if path.qself.is_none() && last.ident == "Result" => last,
            _ => return as_is(),
        };
        let types: Vec<&Type> = match &last.arguments {
            PathArguments::AngleBracketed(arguments) => arguments
                .args
                .iter()
                .filter_map(|argument| match argument {
                    GenericArgument::Type(ty) => Some(ty),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        match types.as_slice() {
            [ok, error] => Ok(Output::Fallible {
                ok: Box::new((*ok).clone()),
                error: Box::new((*error).clone()),
            }),
            [_] => Err(syn::Error::new_spanned(
                ty,
                "memoize: write the return type as `Result<T, E>`, both types spelled out: an \
                 alias such as `io::Result<T>` hides the error type, which the cache must name \
                 to keep `Err` out of it",
            )),
            _ => as_is(),
        }
    }

    /// The type the cache holds: `T` of `Result<T, E>`, or the return type.
    pub(crate) fn cached(&self) -> &Type {
        match self {
            Output::Value(ty) => ty,
            Output::Fallible { ok, .. } => ok,
        }
    }
}

/// Checks that `ty` can be written in the type of the `static` that holds the cache, in
/// `role`.
pub(crate) fn check_storable(ty: &Type, role: Role) -> syn::Result<()> {
    let role_name = match role {
        Role::Key => "key",
        Role::Value => "value",
        Role::Error => "error",
    };
    let parts = TypeParts::of(ty);
    if let Some(self_type) = parts.self_type {
        return Err(syn::Error::new_spanned(
            self_type,
            format!(
                "memoize: the cache's {role_name} type cannot name `Self`: the cache is a \
                 `static`, whose type is written out where `Self` means nothing; write the \
                 type's name"
            ),
        ));
    }
    if let Some(borrow) = parts.borrow {
        let hint = match role {
            Role::Key => {
                " (a `&T` argument is kept as `T::Owned`, `String` for `&str`; or name the key \
                 with `key: Type = expr`)"
            }
            Role::Value | Role::Error => "",
        };
        return Err(syn::Error::new_spanned(
            borrow,
            format!(
                "memoize: the cache's {role_name} type cannot borrow: a cached {role_name} \
                 outlives the call that made it, so it must own its data{hint}"
            ),
        ));
    }
    if let Some(impl_trait) = parts.impl_trait {
        return Err(syn::Error::new_spanned(
            impl_trait,
            format!(
                "memoize: the cache's {role_name} type cannot be `impl Trait`: the cache is a \
                 `static`, whose type must be written out"
            ),
        ));
    }
    if let Some(inferred) = parts.inferred {
        return Err(syn::Error::new_spanned(
            inferred,
            format!(
                "memoize: the cache's {role_name} type must be written out, without `_`: the \
                 cache is a `static`"
            ),
        ));
    }
    Ok(())
}

/// The parts of a type that decide whether a cache can hold it or an argument can be
/// memoized: the first of each kind found.
#[derive(Default)]
struct TypeParts {
    /// A `&mut` borrow.
    mutable_borrow: Option<TokenStream>,
    /// A borrow or lifetime other than `'static`.
    borrow: Option<TokenStream>,
    impl_trait: Option<TokenStream>,
    /// A path starting with `Self`.
    self_type: Option<TokenStream>,
    /// `_`.
    inferred: Option<TokenStream>,
}

impl TypeParts {
    fn of(ty: &Type) -> Self {
        let mut parts = Self::default();
        parts.visit_type_mut(&mut ty.clone());
        parts
    }
}

/// Keeps `part` in `slot` unless it holds an earlier one.
fn keep_first(slot: &mut Option<TokenStream>, part: &impl ToTokens) {
    if slot.is_none() {
        *slot = Some(part.to_token_stream());
    }
}

fn is_static(lifetime: &Lifetime) -> bool {
    lifetime.ident == "static"
}

impl VisitMut for TypeParts {
    fn visit_type_reference_mut(&mut self, reference: &mut TypeReference) {
        if reference.mutability.is_some() {
            keep_first(&mut self.mutable_borrow, reference);
        }
        if !reference.lifetime.as_ref().is_some_and(is_static) {
            keep_first(&mut self.borrow, reference);
        }
        visit_mut::visit_type_reference_mut(self, reference);
    }

    fn visit_lifetime_mut(&mut self, lifetime: &mut Lifetime) {
        if !is_static(lifetime) {
            keep_first(&mut self.borrow, lifetime);
        }
    }

    fn visit_type_impl_trait_mut(&mut self, impl_trait: &mut TypeImplTrait) {
        // What it is made of does not matter: it is refused whole.
        keep_first(&mut self.impl_trait, impl_trait);
    }

    fn visit_type_infer_mut(&mut self, inferred: &mut TypeInfer) {
        keep_first(&mut self.inferred, inferred);
    }

    fn visit_path_mut(&mut self, path: &mut syn::Path) {
        if path
            .segments
            .first()
            .is_some_and(|segment| segment.ident == "Self")
        {
            keep_first(&mut self.self_type, path);
        }
        visit_mut::visit_path_mut(self, path);
    }

    // A function pointer, or the `Fn(&str)` of a trait object, borrows nothing it is stored
    // with: the borrows in its arguments are the callee's.
    fn visit_type_bare_fn_mut(&mut self, _: &mut TypeBareFn) {}

    fn visit_parenthesized_generic_arguments_mut(&mut self, _: &mut ParenthesizedGenericArguments) {
    }
}
