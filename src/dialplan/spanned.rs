//! Span-carrying wrappers used by the serde schema types.
//!
//! [`Sp<T>`] deserializes through `serde_saphyr::Spanned<T>` so every node
//! remembers where it was written; its JSON Schema is the schema of `T`.
//! [`StrList`] accepts either one string or a list of strings; [`SpPairs`]
//! is a mapping kept in file order.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::{Diags, Loc};

/// A value with the position of the YAML node it came from.
#[derive(Clone, Debug)]
pub(crate) struct Sp<T> {
    /// The deserialized value.
    pub value: T,
    /// Where the node is written (for an alias: where the alias is used).
    pub loc: Loc,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Sp {
            value: s.value,
            loc: Loc::from_saphyr(&s.referenced),
        })
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// One string or a list of strings, e.g. `source: client` or
/// `source: [client, carrier]`.
///
/// A single plain scalar that YAML would read as a number or a boolean
/// (`+44`, `0044`, `yes`) is kept verbatim: [`StrList::resolve`] recovers its
/// source text, so operators need not quote prefixes.
#[derive(Clone, Debug)]
pub(crate) struct StrList {
    items: Vec<Sp<String>>,
    /// True when the single item was a non-string scalar whose text must be
    /// read back from the source.
    needs_raw: bool,
    /// Position of the whole node.
    pub loc: Loc,
}

impl StrList {
    /// The items, each with its position; a single non-string scalar is read
    /// back verbatim from `diags.src`.
    pub(crate) fn resolve(&self, diags: &Diags<'_>) -> Vec<Sp<String>> {
        let mut items = self.items.clone();
        if self.needs_raw
            && let (Some(first), Some(raw)) = (items.first_mut(), diags.raw(self.loc))
        {
            first.value = raw.trim().to_owned();
        }
        items
    }
}

/// What the visitor saw before positions are attached.
enum RawList {
    One(String, bool),
    Many(Vec<Sp<String>>),
}

impl<'de> Deserialize<'de> for RawList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawList, E> {
                Ok(RawList::One(v.to_owned(), false))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<RawList, E> {
                Ok(RawList::One(v, false))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawList, E> {
                Ok(RawList::One(v.to_string(), true))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawList, E> {
                Ok(RawList::One(v.to_string(), true))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawList, E> {
                Ok(RawList::One(v.to_string(), true))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawList, E> {
                Ok(RawList::One(v.to_string(), true))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Sp<String>>()? {
                    items.push(item);
                }
                Ok(RawList::Many(items))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for StrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Sp::<RawList>::deserialize(d)?;
        Ok(match s.value {
            RawList::One(value, needs_raw) => StrList {
                items: vec![Sp { value, loc: s.loc }],
                needs_raw,
                loc: s.loc,
            },
            RawList::Many(items) => StrList {
                items,
                needs_raw: false,
                loc: s.loc,
            },
        })
    }
}

impl JsonSchema for StrList {
    fn schema_name() -> Cow<'static, str> {
        "StringOrList".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "One string, or a list of strings.",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        })
    }
}

/// A mapping of strings to strings kept in file order, each key and value
/// with its position, e.g. `add: { X-Gateway: callgate }`. Duplicate keys
/// are left for the validator to report (it knows when two spellings mean
/// the same thing).
#[derive(Clone, Debug)]
pub(crate) struct SpPairs {
    /// `(key, value)` in file order.
    pub items: Vec<(Sp<String>, Sp<String>)>,
}

/// The pairs as the visitor collects them.
struct RawPairs(Vec<(Sp<String>, Sp<String>)>);

impl<'de> Deserialize<'de> for RawPairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawPairs, A::Error> {
                let mut items = Vec::new();
                while let Some(k) = map.next_key::<Sp<String>>()? {
                    let v = map.next_value::<Sp<String>>()?;
                    items.push((k, v));
                }
                Ok(RawPairs(items))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for SpPairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SpPairs {
            items: RawPairs::deserialize(d)?.0,
        })
    }
}

impl JsonSchema for SpPairs {
    fn schema_name() -> Cow<'static, str> {
        "StringMap".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A mapping of names to string values.",
            "type": "object",
            "additionalProperties": { "type": "string" }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        p: StrList,
    }

    fn list(src: &str) -> Vec<(String, usize, usize)> {
        let doc: Doc = serde_saphyr::from_str(src).unwrap_or_else(|e| panic!("{e}"));
        let diags = Diags::new(src, "t");
        doc.p
            .resolve(&diags)
            .into_iter()
            .map(|s| (s.value, s.loc.line, s.loc.col))
            .collect()
    }

    #[test]
    fn dialplan_strlist_single_string() {
        assert_eq!(list("p: client"), vec![("client".into(), 1, 4)]);
        assert_eq!(list("p: '+44'"), vec![("+44".into(), 1, 4)]);
    }

    #[test]
    fn dialplan_strlist_single_number_keeps_source_text() {
        assert_eq!(list("p: +44"), vec![("+44".into(), 1, 4)]);
        assert_eq!(list("p: 0044  # c"), vec![("0044".into(), 1, 4)]);
        assert_eq!(list("p: yes"), vec![("yes".into(), 1, 4)]);
    }

    #[test]
    fn dialplan_strlist_list_keeps_each_position() {
        assert_eq!(
            list("p:\n  - +44\n  - 0033\n"),
            vec![("+44".into(), 2, 5), ("0033".into(), 3, 5)]
        );
        assert_eq!(
            list("p: [a, b]"),
            vec![("a".into(), 1, 5), ("b".into(), 1, 8)]
        );
    }

    #[derive(Deserialize)]
    struct PairsDoc {
        m: SpPairs,
    }

    #[test]
    fn dialplan_pairs_keep_order_and_positions() {
        let src = "m:\n  X-B: 2\n  x-a: 'one'\n";
        let doc: PairsDoc = serde_saphyr::from_str(src).unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<(String, usize, usize, String, usize, usize)> = doc
            .m
            .items
            .into_iter()
            .map(|(k, v)| {
                (
                    k.value, k.loc.line, k.loc.col, v.value, v.loc.line, v.loc.col,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("X-B".into(), 2, 3, "2".into(), 2, 8),
                ("x-a".into(), 3, 3, "one".into(), 3, 8),
            ]
        );
        assert!(serde_saphyr::from_str::<PairsDoc>("m: [a]").is_err());
        assert!(serde_saphyr::from_str::<PairsDoc>("m: { a: [b] }").is_err());
    }

    #[test]
    fn dialplan_strlist_rejects_maps() {
        assert!(serde_saphyr::from_str::<Doc>("p: {a: 1}").is_err());
    }
}
