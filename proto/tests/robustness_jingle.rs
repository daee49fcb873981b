//! The Jingle and SDP parsers for the robustness test: every element is
//! tried as each Jingle type, and every successful Jingle parse goes on
//! through Jingle -> SDP -> text -> SDP -> Jingle.

use minidom::Element;
use proto::jingle::{Content, IceUdpTransport, Jingle, JsonSources};

pub fn extra_parsers(elem: &Element) {
    let _ = Content::try_from(elem);
    let _ = IceUdpTransport::try_from(elem);
    let _ = JsonSources::try_from(elem);
    if let Ok(jingle) = Jingle::try_from(elem) {
        let sdp = proto::sdp::jingle_to_sdp(&jingle);
        let text = sdp.to_string();
        if let Ok(again) = proto::sdp::Sdp::parse(&text) {
            let _ = proto::sdp::sdp_to_jingle(&again);
        }
        let _: Element = jingle.into();
    }
}
