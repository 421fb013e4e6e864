//! The `#[memoize]` attribute of [`ttlcache`](https://docs.rs/ttlcache), which re-exports it
//! as `ttlcache::memoize` (feature `macros`, on by default).
//!
//! Use it through `ttlcache`: the code it writes names `::ttlcache`, so the crate that uses it
//! must depend on `ttlcache` under that name.
//!
//! - `options.rs`: the attribute's options, durations parsed at compile time;
//! - `signature.rs`: the function taken apart, and the signatures refused, with the reason;
//! - `expand.rs`: the code written in the function's place.

mod expand;
mod options;
mod signature;

use proc_macro::TokenStream;

/// Caches a function's results in a cache of its own, keyed by its arguments, with expiry
/// and one computation per key however many callers ask at once.
///
/// ```ignore
/// use ttlcache::memoize;
///
/// #[derive(Clone, Debug)]
/// pub struct ApiError(String);
///
/// /// A user's profile: fetched once, served from memory for five minutes, and refreshed
/// /// in the background after four.
/// #[memoize(capacity = 10_000, time_to_live = "5m", refresh_after = "4m")]
/// pub async fn profile(id: u64) -> Result<String, ApiError> {
///     // An HTTP call or a query, in a real service.
///     Ok(format!("profile {id}"))
/// }
///
/// pub struct Repo {
///     tenant: u64,
/// }
///
/// impl Repo {
///     /// A method names what distinguishes its calls: here, the tenant.
///     #[memoize(key: u64 = self.tenant, time_to_live = "1m")]
///     pub fn plan(&self) -> String {
///         format!("plan of {}", self.tenant)
///     }
/// }
///
/// # async fn demo() -> Result<(), ApiError> {
/// assert_eq!(profile(7).await?, "profile 7");
/// // The accessor, named after the function, reaches the cache.
/// profile_cache().invalidate(&(7,));
/// assert_eq!(Repo { tenant: 3 }.plan(), "plan of 3");
/// assert_eq!(Repo::plan_cache().len(), 1);
/// # Ok(())
/// # }
/// ```
///
/// (This example does not run here: a proc-macro crate's doc tests cannot use the crate that
/// re-exports it. Examples that run are in `ttlcache`'s documentation and its
/// `tests/memoize.rs`.)
///
/// # Options
///
/// All optional, in any order, separated by commas:
///
/// | option | what it sets |
/// |---|---|
/// | `capacity = expr` | the most entries (`max_capacity`): any integer expression, cast to `u64` |
/// | `time_to_live = "5m"` | how long a value is served after it was computed |
/// | `time_to_idle = "1m"` | how long a value is served after it was last read |
/// | `refresh_after = "4m"` | a value older than this is recomputed in the background when read, while readers keep getting it; only for an `async fn` keyed by its arguments, and shorter than `time_to_live` |
/// | `name = "users"` | the cache's name in metrics and tracing; by default the function's path, as `module_path!()::name` |
/// | `key: Type = expr` | the key, instead of the arguments: an expression of the arguments (and of `self`) |
///
/// A duration is a string checked at compile time: whole numbers, each followed by a unit,
/// `ns`, `us`, `ms`, `s`, `m`, `h` or `d`, adding up (`"1h30m"`, `"100ms"`). Fractions are
/// refused (write `"1500ms"`, not `"1.5s"`), and so is zero.
///
/// `key` needs its type (`key: u64 = self.id`, not `key = self.id`): the cache is a
/// `static`, whose type must be written out. The expression runs before the body, which then
/// gets every argument: clone an argument the key would otherwise move.
///
/// # What is cached
///
/// - **The key** is by default the tuple of the arguments: `(a, b)`, `(a,)` for one, `()` for
///   none. An argument `&T` is kept as `T::Owned` (`String` for `&str`, `Vec<u8>` for
///   `&[u8]`), so the key owns its data. The parts must be `Hash + Eq + Clone + Send + Sync +
///   'static`. A blocking `fn` clones its arguments into the key before its body runs, and
///   calls the body with the originals.
/// - **The value** is the return value, `Clone + Send + Sync + 'static`. For a return type
///   `Result<T, E>`, only `Ok` values are cached; an `Err` is not (the next call runs the
///   body again), and each caller that waited for that call gets its own clone of it, as the
///   body's own `E`: `E: Clone + Send + Sync + 'static`, not necessarily
///   `std::error::Error`. Spell the type out as `Result<T, E>`: a one-argument alias such as
///   `io::Result<T>` is refused, since the error type must be named. A function returning
///   nothing caches `()`.
///
/// # Concurrent calls on the same key
///
/// The body runs once; the other callers wait for it and get a clone of its value, or of its
/// error. An `async fn` keyed by its arguments runs its body as a task of the tokio runtime it
/// is called in (so its body's future must be `Send`): a caller that is cancelled neither
/// cancels nor stalls the call that others wait for, and the value is still stored. The other
/// routes run the body in the caller that came first; if it is cancelled or panics, a waiting
/// caller runs the body in its place. A blocking `fn` waits by blocking its thread: in async
/// code, memoize an `async fn` instead.
///
/// # The accessor
///
/// Next to the function, `#[memoize]` writes `fn <name>_cache() -> &'static Cache`, with the
/// function's visibility (an associated function for a method), so that several memoized
/// functions can share a module: `square_cache()` for `fn square`.
///
/// - For an `async fn` keyed by its arguments, `Cache` is
///   `ttlcache::LoadingCache<Key, T, E>` (`E` is `std::convert::Infallible` for a function
///   that does not return a `Result`): `invalidate(&(7,))`, `refresh`, `stats` through
///   `cache()`. Built on first use, it needs a tokio runtime then: the accessor panics if it
///   is first called outside one. (This route needs `ttlcache`'s `tokio` feature, on by
///   default.)
/// - Otherwise `Cache` is `ttlcache::TtlCache<Key, T>`: `remove(&(7,))`, `stats`, `len`.
///
/// The cache lives as long as the program: a memoized `async fn` works across runtimes, as
/// under `#[tokio::test]`, where each test has its own, since each load runs on the runtime
/// of the call that started it.
///
/// # Methods
///
/// A method (`&self`, `self`, `self: Arc<Self>`, ...) needs `key: Type = expr`: its cache is
/// shared by every `self`, so the key must name what distinguishes the calls. The body and the
/// accessor become associated functions of the same `impl`, so a method of a trait `impl`
/// cannot be memoized; in a generic `impl`, every instantiation shares the one cache. An
/// associated function without `self` is not supported (the code written calls its accessor
/// as a free function): memoize a free function instead.
///
/// # What the expansion is
///
/// The function keeps its signature, attributes and documentation; its body moves to a
/// hidden `__memoized_<name>` with the same parameters, which the cache calls on a miss. An
/// `async fn` keyed by its arguments is a `LoadingCache` whose loader calls the body from the
/// key (which is what lets `refresh_after` call it again); an `async fn` with a `key` calls
/// `TtlCache::try_get_or_load` (or `get_or_load`) with the body's future; a blocking `fn`
/// calls `TtlCache::try_get_or_insert_with` (or `get_or_insert_with`).
///
/// # Compile errors
///
/// What cannot be supported is an error that says why, never a cache that quietly
/// misbehaves: type or const generic parameters and `impl Trait` arguments (one static cache
/// cannot hold every instantiation; lifetime parameters are fine), `&mut` arguments and
/// `&mut self` (a cached call would skip the body's writes through them), argument patterns,
/// a method without `key`, `refresh_after` where the key is not the arguments or the function
/// is not `async`, `const`, `unsafe` and `extern` functions, a key or value type that borrows
/// or names `Self`, `key` without a type, an invalid or zero duration, and unknown options.
///
/// # Panics
///
/// The memoized function panics where its body panics. For an `async fn` keyed by its
/// arguments, the panic happens in the task that ran the body, and each caller that waited
/// for it panics with ``memoized function `<name>` panicked``.
#[proc_macro_attribute]
pub fn memoize(options: TokenStream, function: TokenStream) -> TokenStream {
    let function = proc_macro2::TokenStream::from(function);
    match expand::memoize(options.into(), function.clone()) {
        Ok(memoized) => memoized.into(),
        Err(error) => {
            // The function as written still compiles, so that its callers see only this error.
            let error = error.to_compile_error();
            quote::quote!(#error #function).into()
        }
    }
}
