//! Small helpers for reading and writing attributes on [`minidom::Element`]s.
//!
//! They exist so each protocol module stays declarative and every error names
//! its element and attribute.

use std::str::FromStr;

use minidom::rxml::NcName;
use minidom::{Element, ElementBuilder, IntoAttributeValue};

use crate::error::{Error, Result};

/// Fails unless `elem` is `<name xmlns=ns>`.
pub(crate) fn check(elem: &Element, name: &'static str, ns: &'static str) -> Result<()> {
    if elem.is(name, ns) {
        Ok(())
    } else {
        Err(Error::WrongElement {
            expected: name,
            expected_ns: ns,
            found: elem.name().to_owned(),
            found_ns: elem.ns(),
        })
    }
}

/// A required attribute as a string.
pub(crate) fn req<'a>(
    elem: &'a Element,
    element: &'static str,
    attribute: &'static str,
) -> Result<&'a str> {
    elem.attr(attribute)
        .ok_or(Error::MissingAttribute { element, attribute })
}

/// A required attribute parsed with `FromStr`.
pub(crate) fn req_parse<T: FromStr>(
    elem: &Element,
    element: &'static str,
    attribute: &'static str,
) -> Result<T> {
    let v = req(elem, element, attribute)?;
    v.parse().map_err(|_| Error::InvalidAttribute {
        element,
        attribute,
        value: v.to_owned(),
    })
}

/// An optional attribute parsed with `FromStr`.
pub(crate) fn opt_parse<T: FromStr>(
    elem: &Element,
    element: &'static str,
    attribute: &'static str,
) -> Result<Option<T>> {
    match elem.attr(attribute) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| Error::InvalidAttribute {
            element,
            attribute,
            value: v.to_owned(),
        }),
    }
}

/// An optional attribute as an owned string.
pub(crate) fn opt(elem: &Element, attribute: &str) -> Option<String> {
    elem.attr(attribute).map(str::to_owned)
}

/// An optional XML boolean (`true`/`false`/`1`/`0`).
pub(crate) fn opt_bool(
    elem: &Element,
    element: &'static str,
    attribute: &'static str,
) -> Result<Option<bool>> {
    match elem.attr(attribute) {
        None => Ok(None),
        Some("true") | Some("1") => Ok(Some(true)),
        Some("false") | Some("0") => Ok(Some(false)),
        Some(v) => Err(Error::InvalidAttribute {
            element,
            attribute,
            value: v.to_owned(),
        }),
    }
}

/// An attribute name for the builder. Only called with the crate's own
/// constant names, which are valid XML names.
pub(crate) fn name(n: &str) -> NcName {
    NcName::try_from(n).unwrap_or_else(|_| unreachable!("attribute name {n:?} is a valid NCName"))
}

/// Extension trait: set attributes on a builder by `&str` name, skipping `None`.
pub(crate) trait BuilderExt {
    fn a<V: IntoAttributeValue>(self, n: &str, v: V) -> Self;
}

impl BuilderExt for ElementBuilder {
    fn a<V: IntoAttributeValue>(self, n: &str, v: V) -> Self {
        self.attr(name(n), v)
    }
}

/// Parses a fixture or wire string into an element. Stanzas without a
/// namespace on the root (as some client libraries' tests write them) get
/// `jabber:client`.
pub fn parse_xml(xml: &str) -> std::result::Result<Element, minidom::Error> {
    let mut prefixes = std::collections::BTreeMap::new();
    prefixes.insert(None, crate::ns::JABBER_CLIENT.to_owned());
    Element::from_reader_with_prefixes(xml.as_bytes(), prefixes)
}
