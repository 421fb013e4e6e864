//! The code `#[memoize]` writes in place of a function: the function again, its body now a
//! call through the cache; the body itself, moved to a hidden function; and the accessor,
//! which holds the cache in a `static` and builds it on first use.
//!
//! The memoized function takes one of three routes to its cache ([`Route`]).

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{
    AttrStyle, Attribute, FnArg, Ident, ItemFn, Pat, Signature, Type, Visibility, ext::IdentExt,
    spanned::Spanned,
};

use crate::{
    options::{DurationOption, KeyOption, Options},
    signature::{Function, Output, Passing, Role, check_storable},
};

/// Expands `#[memoize(<options>)]` on `item`.
pub(crate) fn memoize(options: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let options: Options = syn::parse2(options)?;
    let item: ItemFn = syn::parse2(item).map_err(|error| {
        syn::Error::new(
            error.span(),
            format!("memoize: expected a `fn` or `async fn` with a body ({error})"),
        )
    })?;
    let function = Function::check(item)?;
    let route = Route::choose(&function, &options)?;
    check_storable(function.output.cached(), Role::Value)?;
    if let (Route::Loader, Output::Fallible { error, .. }) = (route, &function.output) {
        check_storable(error, Role::Error)?;
    }
    let names = Names::of(&function);
    let key = Key::of(&function, &options, route)?;
    let memoized = memoized_fn(&function, route, &names, &key);
    let body = body_fn(&function, &names);
    let accessor = accessor_fn(&function, &options, route, &names, &key);
    Ok(quote! {
        #memoized
        #body
        #accessor
    })
}

/// How the memoized function reaches its cache.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    /// An `async fn` keyed by its arguments: a `LoadingCache` whose loader calls the body
    /// from the key alone, so that `refresh_after` can call it again in the background.
    Loader,
    /// An `async fn` with a `key` option (as every method has): `TtlCache::try_get_or_load`,
    /// the body's future as its `init`.
    Load,
    /// A blocking `fn`: `TtlCache::try_get_or_insert_with`, a call of the body as its `init`.
    Insert,
}

impl Route {
    fn choose(function: &Function, options: &Options) -> syn::Result<Self> {
        if let (Some(receiver), None) = (&function.receiver, &options.key) {
            return Err(syn::Error::new_spanned(
                receiver,
                "memoize: a method needs `key: Type = expr` naming what distinguishes its calls, \
                 such as `key: u64 = self.id`: the cache is shared by every `self`",
            ));
        }
        let route = match (function.is_async(), options.key.is_some()) {
            (true, false) => Route::Loader,
            (true, true) => Route::Load,
            (false, _) => Route::Insert,
        };
        if let Some(refresh) = &options.refresh_after {
            if route != Route::Loader {
                return Err(syn::Error::new(
                    refresh.name.span(),
                    "memoize: `refresh_after` needs an `async fn` whose key is its arguments (no \
                     `key` option): a refresh calls the function again in a background task, \
                     from the key alone",
                ));
            }
        }
        Ok(route)
    }
}

/// The names the expansion uses.
struct Names {
    /// The function's name, for messages and the cache's default name.
    function: String,
    /// The hidden function holding the body: `__memoized_<name>`.
    body: Ident,
    /// The cache's accessor: `<name>_cache`.
    accessor: Ident,
    /// What reaches the other two from the memoized function: `Self::` in an `impl`.
    sibling: TokenStream,
}

impl Names {
    fn of(function: &Function) -> Self {
        let ident = &function.item.sig.ident;
        Self {
            function: ident.unraw().to_string(),
            body: format_ident!("__memoized_{}", ident),
            accessor: format_ident!("{}_cache", ident, span = ident.span()),
            sibling: if function.receiver.is_some() {
                quote!(Self::)
            } else {
                TokenStream::new()
            },
        }
    }
}

/// The cache's key: its type, and how the memoized function makes it.
struct Key {
    ty: TokenStream,
    /// What runs before the key is used: an explicit key is bound to its type first, so that
    /// a mismatch is reported at its expression.
    setup: TokenStream,
    /// The key, once `setup` ran.
    value: TokenStream,
}

impl Key {
    fn of(function: &Function, options: &Options, route: Route) -> syn::Result<Self> {
        if let Some(KeyOption { ty, expr }) = &options.key {
            check_storable(ty, Role::Key)?;
            let key = local("key");
            return Ok(Self {
                ty: quote!(#ty),
                setup: quote!(let #key: #ty = #expr;),
                value: quote!(#key),
            });
        }
        let mut types = Vec::new();
        let mut parts = Vec::new();
        for argument in &function.arguments {
            let name = &argument.name;
            match &argument.passing {
                Passing::Owned => {
                    let ty = &argument.ty;
                    check_storable(ty, Role::Key)?;
                    types.push(quote!(#ty));
                    // The loader gets the key and lends the body its parts; a blocking `fn`
                    // calls its body with the arguments themselves, so its key is a copy.
                    parts.push(match route {
                        Route::Loader => quote!(#name),
                        Route::Load | Route::Insert => {
                            quote_spanned!(ty.span()=> ::std::clone::Clone::clone(&#name))
                        }
                    });
                }
                Passing::Borrowed(referent) => {
                    check_storable(referent, Role::Key)?;
                    types.push(quote!(<#referent as ::std::borrow::ToOwned>::Owned));
                    parts.push(quote_spanned! {referent.span()=>
                        <#referent as ::std::borrow::ToOwned>::to_owned(#name)
                    });
                }
            }
        }
        Ok(Self {
            ty: quote!((#(#types,)*)),
            setup: TokenStream::new(),
            value: quote!((#(#parts,)*)),
        })
    }
}

/// The function as declared, its body replaced by a call through the cache.
fn memoized_fn(function: &Function, route: Route, names: &Names, key: &Key) -> TokenStream {
    let ItemFn {
        attrs, vis, sig, ..
    } = &function.item;
    let attrs = attrs
        .iter()
        .filter(|attr| matches!(attr.style, AttrStyle::Outer));
    let sig = without_mut_bindings(sig);
    let Names {
        accessor, sibling, ..
    } = names;
    let cache = quote!(#sibling #accessor());
    let Key {
        setup,
        value: key_value,
        ..
    } = key;
    let error = local("error");
    let through_cache = match (route, &function.output) {
        (Route::Loader, _) => loader_lookup(function, names, &cache, key),
        (
            Route::Load,
            Output::Fallible {
                error: error_ty, ..
            },
        ) => {
            let call = body_call(function, names);
            let cloned = cloned_error(error_ty, &error);
            quote! {
                #setup
                #cache.try_get_or_load(#key_value, #call).await.map_err(|#error| #cloned)
            }
        }
        (Route::Load, Output::Value(_)) => {
            let call = body_call(function, names);
            quote! {
                #setup
                #cache.get_or_load(#key_value, #call).await
            }
        }
        (
            Route::Insert,
            Output::Fallible {
                error: error_ty, ..
            },
        ) => {
            let call = body_call(function, names);
            let cloned = cloned_error(error_ty, &error);
            quote! {
                #setup
                #cache.try_get_or_insert_with(#key_value, || #call).map_err(|#error| #cloned)
            }
        }
        (Route::Insert, Output::Value(_)) => {
            let call = body_call(function, names);
            quote! {
                #setup
                #cache.get_or_insert_with(#key_value, || #call)
            }
        }
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            #through_cache
        }
    }
}

/// The `Loader` route's body: a `get` of the loading cache, its `LoadError` turned back into
/// what the function returns.
fn loader_lookup(
    function: &Function,
    names: &Names,
    cache: &TokenStream,
    key: &Key,
) -> TokenStream {
    let value = local("value");
    let error = local("error");
    let key_value = &key.value;
    let (found, failed) = match &function.output {
        Output::Fallible {
            error: error_ty, ..
        } => {
            let cloned = cloned_error(error_ty, &error);
            (
                quote!(::std::result::Result::Ok(#value)),
                quote!(::std::result::Result::Err(#cloned)),
            )
        }
        // The error type is `Infallible`: there is no error to return.
        Output::Value(_) => (quote!(#value), quote!(match *#error {})),
    };
    let function_name = &names.function;
    let panicked = format!("memoized function `{function_name}` panicked");
    let no_value =
        format!("memoized function `{function_name}`: its cache gave neither a value nor an error");
    quote! {
        match #cache.get(&#key_value).await {
            ::std::result::Result::Ok(#value) => #found,
            ::std::result::Result::Err(::ttlcache::LoadError::Failed(#error)) => #failed,
            ::std::result::Result::Err(::ttlcache::LoadError::Panicked) => {
                ::std::panic!(#panicked)
            }
            ::std::result::Result::Err(_) => ::std::panic!(#no_value),
        }
    }
}

/// A call of the hidden body with the memoized function's own arguments.
fn body_call(function: &Function, names: &Names) -> TokenStream {
    let Names { body, sibling, .. } = names;
    let receiver = function.receiver.as_ref().map(|receiver| {
        let self_token = &receiver.self_token;
        quote!(#self_token,)
    });
    let arguments = function.arguments.iter().map(|argument| &argument.name);
    quote!(#sibling #body(#receiver #(#arguments),*))
}

/// The caller's own copy of the error that `error` (an `Arc<E>`) shares; a missing `Clone`
/// is reported at `E`.
fn cloned_error(error_ty: &Type, error: &Ident) -> TokenStream {
    quote_spanned!(error_ty.span()=> ::std::clone::Clone::clone(&*#error))
}

/// `sig` without `mut` on its bindings: the memoized function only passes its arguments on,
/// and the body keeps its own `mut`s.
fn without_mut_bindings(sig: &Signature) -> Signature {
    let mut sig = sig.clone();
    for input in &mut sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                if receiver.reference.is_none() {
                    receiver.mutability = None;
                }
            }
            FnArg::Typed(typed) => {
                if let Pat::Ident(binding) = &mut *typed.pat {
                    binding.mutability = None;
                }
            }
        }
    }
    sig
}

/// The function as written, renamed and hidden: what the cache calls on a miss. It keeps the
/// function's `cfg`s and `allow`s, and the inner attributes of its body.
fn body_fn(function: &Function, names: &Names) -> TokenStream {
    let mut body = function.item.clone();
    body.sig.ident = names.body.clone();
    body.vis = Visibility::Inherited;
    body.attrs.retain(|attr| {
        matches!(attr.style, AttrStyle::Inner(_)) || is_one_of(attr, &["cfg", "allow"])
    });
    quote! {
        #[doc(hidden)]
        #body
    }
}

/// `<vis> fn <name>_cache() -> &'static <cache>`: the cache, in a `static`, built on first
/// use.
fn accessor_fn(
    function: &Function,
    options: &Options,
    route: Route,
    names: &Names,
    key: &Key,
) -> TokenStream {
    let vis = &function.item.vis;
    let cfgs = function
        .item
        .attrs
        .iter()
        .filter(|attr| is_one_of(attr, &["cfg"]));
    let function_name = &names.function;
    let accessor = &names.accessor;
    let key_ty = &key.ty;
    let value_ty = function.output.cached();
    let (cache_ty, build) = match route {
        Route::Loader => {
            let error_ty = match &function.output {
                Output::Fallible { error, .. } => quote!(#error),
                Output::Value(_) => quote!(::std::convert::Infallible),
            };
            let load_from_key = loader(function, names, key_ty);
            let message = format!(
                "memoize: cannot build the cache of `{function_name}` (its first use must be \
                 inside a tokio runtime)"
            );
            (
                quote!(::ttlcache::LoadingCache<#key_ty, #value_ty, #error_ty>),
                quote!(.build_loading(#load_from_key).expect(#message)),
            )
        }
        Route::Load | Route::Insert => {
            let message = format!("memoize: cannot build the cache of `{function_name}`");
            (
                quote!(::ttlcache::TtlCache<#key_ty, #value_ty>),
                quote!(.build().expect(#message)),
            )
        }
    };
    let (setup, settings) = builder_settings(options, function_name);
    let doc = accessor_doc(function, options, route, names);
    quote! {
        #(#cfgs)*
        #[doc = #doc]
        #[allow(clippy::type_complexity)]
        #vis fn #accessor() -> &'static #cache_ty {
            static MEMOIZED_CACHE: ::std::sync::OnceLock<#cache_ty> =
                ::std::sync::OnceLock::new();
            MEMOIZED_CACHE.get_or_init(|| {
                #setup
                ::ttlcache::TtlCache::<#key_ty, #value_ty>::builder()
                    #settings
                    #build
            })
        }
    }
}

/// The `Loader` route's loader: takes the key apart and calls the body, lending it back the
/// arguments it borrows.
fn loader(function: &Function, names: &Names, key_ty: &TokenStream) -> TokenStream {
    let body = &names.body;
    let parameters = function.arguments.iter().map(|argument| &argument.name);
    let arguments = function.arguments.iter().map(|argument| {
        let name = &argument.name;
        match &argument.passing {
            Passing::Owned => quote!(#name),
            Passing::Borrowed(referent) => {
                quote!(::std::borrow::Borrow::<#referent>::borrow(&#name))
            }
        }
    });
    let call = quote!(#body(#(#arguments),*).await);
    let load = match &function.output {
        Output::Fallible { .. } => call,
        Output::Value(_) => {
            quote!(::std::result::Result::Ok::<_, ::std::convert::Infallible>(#call))
        }
    };
    quote!(|(#(#parameters,)*): #key_ty| async move { #load })
}

/// The builder calls the options ask for, and what must be computed before them.
fn builder_settings(options: &Options, function_name: &str) -> (TokenStream, TokenStream) {
    let mut setup = TokenStream::new();
    let mut settings = TokenStream::new();
    if let Some(capacity) = &options.capacity {
        let max_capacity = local("max_capacity");
        setup.extend(quote! {
            #[allow(clippy::unnecessary_cast)]
            let #max_capacity = (#capacity) as u64;
        });
        settings.extend(quote!(.max_capacity(#max_capacity)));
    }
    let durations = [
        ("time_to_live", &options.time_to_live),
        ("time_to_idle", &options.time_to_idle),
        ("refresh_after", &options.refresh_after),
    ];
    for (method, option) in durations {
        if let Some(DurationOption { value, .. }) = option {
            let method = Ident::new(method, Span::call_site());
            let seconds = Literal::u64_suffixed(value.as_secs());
            let nanos = Literal::u32_suffixed(value.subsec_nanos());
            settings.extend(quote!(.#method(::std::time::Duration::new(#seconds, #nanos))));
        }
    }
    // By default the function's path, so that functions of one name in two modules do not
    // report under one name.
    let name = match &options.name {
        Some(name) => quote!(#name),
        None => quote!(::std::concat!(::std::module_path!(), "::", #function_name)),
    };
    settings.extend(quote!(.name(#name)));
    (setup, settings)
}

/// The accessor's documentation: which function it caches, and what it returns.
fn accessor_doc(function: &Function, options: &Options, route: Route, names: &Names) -> String {
    let name = &names.function;
    let link = if function.receiver.is_some() {
        format!("[`{name}`](Self::{name})")
    } else {
        format!("[`{name}`]")
    };
    let values = match function.output {
        Output::Fallible { .. } => "`Ok` values",
        Output::Value(_) => "values",
    };
    let keyed_by = if options.key.is_some() {
        "by its `key` option"
    } else {
        "by the tuple of its arguments (a `&T` argument as `T::Owned`)"
    };
    match route {
        Route::Loader => format!(
            "The cache of the memoized {link}: a `ttlcache::LoadingCache` of its {values} \
             {keyed_by}, for `invalidate`, `refresh`, and through `cache()`, `stats` and the \
             rest.\n\n\
             # Panics\n\n\
             If its first call is outside a tokio runtime: the cache runs its loads as tasks. \
             (The memoized function, awaited in a tokio runtime, never panics for this.)"
        ),
        Route::Load | Route::Insert => format!(
            "The cache of the memoized {link}: a `ttlcache::TtlCache` of its {values} \
             {keyed_by}, for `remove`, `stats` and the rest."
        ),
    }
}

/// Whether `attr` is an outer `#[<one of names>(...)]`.
fn is_one_of(attr: &Attribute, names: &[&str]) -> bool {
    matches!(attr.style, AttrStyle::Outer) && names.iter().any(|name| attr.path().is_ident(name))
}

/// A local of the generated code. Mixed-site hygiene, as `macro_rules!` locals have, keeps
/// the function's own names from shadowing it, or being shadowed by it.
fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}
