//! The options of `#[memoize(...)]`, parsed and checked at compile time: a duration that
//! cannot work is an error at its literal, not a panic on the first call.

use std::time::Duration;

use syn::{
    Expr, Ident, LitStr, Token, Type,
    parse::{Parse, ParseStream},
};

/// The options there are, as the error for an unknown one lists them.
const KNOWN_OPTIONS: &str = "capacity, time_to_live, time_to_idle, refresh_after, name and key";

/// The units a duration may be written in, as the errors list them.
const UNIT_NAMES: &str = "ns, us, ms, s, m, h or d";

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Each unit with its length in nanoseconds.
const UNITS: [(&str, u128); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", NANOS_PER_SECOND),
    ("m", 60 * NANOS_PER_SECOND),
    ("h", 3_600 * NANOS_PER_SECOND),
    ("d", 86_400 * NANOS_PER_SECOND),
];

/// The options of one `#[memoize(...)]`, each optional.
#[derive(Default)]
pub(crate) struct Options {
    /// `capacity = expr`: the cache's `max_capacity`, any integer expression.
    pub(crate) capacity: Option<Expr>,
    /// `time_to_live = "5m"`.
    pub(crate) time_to_live: Option<DurationOption>,
    /// `time_to_idle = "1m"`.
    pub(crate) time_to_idle: Option<DurationOption>,
    /// `refresh_after = "4m"`: only for an `async fn` keyed by its arguments.
    pub(crate) refresh_after: Option<DurationOption>,
    /// `name = "users"`: the cache's name in metrics and tracing.
    pub(crate) name: Option<LitStr>,
    /// `key: Type = expr`: the key, instead of the arguments.
    pub(crate) key: Option<KeyOption>,
}

/// A duration option: its name, where errors about it point, and its value.
pub(crate) struct DurationOption {
    pub(crate) name: Ident,
    pub(crate) value: Duration,
}

/// `key: Type = expr`. The type is required: the cache is a `static`, whose type is written
/// out.
pub(crate) struct KeyOption {
    pub(crate) ty: Type,
    pub(crate) expr: Expr,
}

impl Parse for Options {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = Options::default();
        while !input.is_empty() {
            options.parse_option(input)?;
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        options.check_refresh_before_expiry()?;
        Ok(options)
    }
}

impl Options {
    /// Parses one `name = value` (or `key: Type = expr`) into its slot.
    fn parse_option(&mut self, input: ParseStream<'_>) -> syn::Result<()> {
        let name: Ident = input.parse()?;
        match name.to_string().as_str() {
            "key" => {
                let key = parse_key(&name, input)?;
                set(&mut self.key, &name, key)
            }
            "capacity" => {
                input.parse::<Token![=]>()?;
                let capacity = input.parse()?;
                set(&mut self.capacity, &name, capacity)
            }
            "name" => {
                input.parse::<Token![=]>()?;
                let cache_name = input.parse().map_err(|error| {
                    let problem = "memoize: `name` takes a string, such as \"users\"";
                    syn::Error::new(error.span(), problem)
                })?;
                set(&mut self.name, &name, cache_name)
            }
            "time_to_live" => {
                let duration = DurationOption::parse(name.clone(), input)?;
                set(&mut self.time_to_live, &name, duration)
            }
            "time_to_idle" => {
                let duration = DurationOption::parse(name.clone(), input)?;
                set(&mut self.time_to_idle, &name, duration)
            }
            "refresh_after" => {
                let duration = DurationOption::parse(name.clone(), input)?;
                set(&mut self.refresh_after, &name, duration)
            }
            unknown => Err(syn::Error::new(
                name.span(),
                format!("memoize: unknown option `{unknown}` (the options are {KNOWN_OPTIONS})"),
            )),
        }
    }

    /// A refresh keeps the old value until the new one lands, so it must start before the
    /// old value expires; the builder would refuse this on the first call.
    fn check_refresh_before_expiry(&self) -> syn::Result<()> {
        if let (Some(refresh), Some(live)) = (&self.refresh_after, &self.time_to_live) {
            if refresh.value >= live.value {
                return Err(syn::Error::new(
                    refresh.name.span(),
                    "memoize: `refresh_after` must be shorter than `time_to_live`: a refresh \
                     starts while the old value is still served",
                ));
            }
        }
        Ok(())
    }
}

/// Stores an option's value, refusing an option given twice.
fn set<T>(slot: &mut Option<T>, name: &Ident, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            name.span(),
            format!("memoize: `{name}` is given twice"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// The rest of `key: Type = expr`, after `key`.
fn parse_key(name: &Ident, input: ParseStream<'_>) -> syn::Result<KeyOption> {
    if !input.peek(Token![:]) {
        return Err(syn::Error::new(
            name.span(),
            "memoize: `key` needs its type, as in `key: u64 = self.id`: the cache is a \
             `static`, and a static's type must be written out",
        ));
    }
    input.parse::<Token![:]>()?;
    let ty = input.parse()?;
    input.parse::<Token![=]>()?;
    let expr = input.parse()?;
    Ok(KeyOption { ty, expr })
}

impl DurationOption {
    /// The rest of `name = "5m"`, after the name.
    fn parse(name: Ident, input: ParseStream<'_>) -> syn::Result<Self> {
        input.parse::<Token![=]>()?;
        let literal: LitStr = input.parse().map_err(|error| {
            syn::Error::new(
                error.span(),
                format!("memoize: `{name}` takes a string, such as \"5m\" or \"1h30m\""),
            )
        })?;
        let text = literal.value();
        let value = parse_duration(&text).map_err(|problem| {
            syn::Error::new(
                literal.span(),
                format!("memoize: `{name} = {text:?}`: {problem}"),
            )
        })?;
        Ok(Self { name, value })
    }
}

/// Parses whole numbers each followed by a unit, adding up ("1h30m", "100ms"), into a
/// nonzero duration; the error says what is wrong, for the caller to place.
///
/// Fractions ("1.5s") are refused: a smaller unit says the same exactly ("1500ms").
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("expected a number and a unit, such as \"5m\" or \"1h30m\"".to_owned());
    }
    let too_long = || "too long for a `Duration`".to_owned();
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let (number, after_number) = split_while(rest, |c| c.is_ascii_digit());
        let (unit, after_unit) = split_while(after_number, char::is_alphabetic);
        if number.is_empty() {
            return Err(if unit.is_empty() {
                let unexpected = rest.chars().next().unwrap_or_default();
                format!("unexpected `{unexpected}` (write whole numbers with units: \"1h30m\")")
            } else {
                format!("expected a number before `{unit}`")
            });
        }
        if unit.is_empty() {
            return Err(match after_number.chars().next() {
                Some('.') => {
                    "fractions are not supported; use a smaller unit (\"1500ms\", not \"1.5s\")"
                        .to_owned()
                }
                Some(unexpected) => format!("unexpected `{unexpected}` after `{number}`"),
                None => format!("`{number}` has no unit (use {UNIT_NAMES})"),
            });
        }
        let Some(&(_, unit_nanos)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!("unknown unit `{unit}` (use {UNIT_NAMES})"));
        };
        let count: u128 = number.parse().map_err(|_| too_long())?;
        total = count
            .checked_mul(unit_nanos)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(too_long)?;
        rest = after_unit;
    }
    if total == 0 {
        return Err("the duration must be longer than zero".to_owned());
    }
    let seconds = u64::try_from(total / NANOS_PER_SECOND).map_err(|_| too_long())?;
    let nanos = u32::try_from(total % NANOS_PER_SECOND).expect("less than a second of nanoseconds");
    Ok(Duration::new(seconds, nanos))
}

/// `text` split after its longest prefix of characters that `take` accepts.
fn split_while(text: &str, take: impl Fn(char) -> bool) -> (&str, &str) {
    let end = text.find(|c: char| !take(c)).unwrap_or(text.len());
    text.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("7us"), Ok(Duration::from_micros(7)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7_200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
    }

    #[test]
    fn adds_up_concatenated_parts() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("1s500ms"), Ok(Duration::from_millis(1_500)));
    }

    #[test]
    fn explains_what_is_wrong() {
        let error = |text| parse_duration(text).unwrap_err();
        assert_eq!(
            error("5x"),
            "unknown unit `x` (use ns, us, ms, s, m, h or d)"
        );
        assert_eq!(
            error("30"),
            "`30` has no unit (use ns, us, ms, s, m, h or d)"
        );
        assert_eq!(error("m"), "expected a number before `m`");
        assert!(error("1.5s").starts_with("fractions are not supported"));
        assert!(error("5 m").starts_with("unexpected ` ` after `5`"));
        assert!(error("").starts_with("expected a number and a unit"));
        assert_eq!(error("0s"), "the duration must be longer than zero");
        assert_eq!(error("0h0m"), "the duration must be longer than zero");
        assert_eq!(
            error("99999999999999999999999d"),
            "too long for a `Duration`"
        );
    }
}
