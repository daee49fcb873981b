//! The Jingle and SDP parsers for the robustness test.

use minidom::Element;

pub fn extra_parsers(elem: &Element) {
    let _ = elem;
}
