//! What a phone caller's participant shows in the room.

use minidom::Element;

const NS_NICK: &str = "http://jabber.org/protocol/nick";

/// The caller's display name and muted state, as room presence payloads
/// (the features element is added by the participant).
pub fn caller(display: &str, muted: bool) -> Vec<Element> {
    vec![
        Element::builder("nick", NS_NICK).append(display).build(),
        Element::builder("audiomuted", proto::ns::MUTE_AUDIO)
            .append(if muted { "true" } else { "false" })
            .build(),
        Element::builder("videomuted", proto::ns::MUTE_VIDEO)
            .append("true")
            .build(),
    ]
}

/// The features a caller's participant announces (disco and presence).
pub fn caller_features() -> Vec<String> {
    [
        proto::ns::feature::JIGASI,
        proto::ns::feature::AUDIO_MUTE,
        proto::ns::feature::DTMF,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// A caller's number as others see it: the first two digits (country code)
/// and the last three kept, the rest masked (`+44 20 7946 0958` →
/// `+44 •• •••• •958`), so presence never carries the full number.
pub fn mask_number(number: &str) -> String {
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    number
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen > 2 && seen + 3 <= digits {
                    return '•';
                }
            }
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_masked_but_for_the_country_code_and_last_three() {
        assert_eq!(mask_number("+44 20 7946 0958"), "+44 •• •••• •958");
        assert_eq!(mask_number("1234"), "1234");
        assert_eq!(mask_number(""), "");
    }

    #[test]
    fn the_presence_says_muted() {
        let p = caller("+1 •••958", true);
        assert_eq!(p[0].text(), "+1 •••958");
        assert_eq!(p[1].text(), "true");
    }
}
