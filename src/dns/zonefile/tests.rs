//! Unit tests for the zone-file parser that need no external files.

use super::*;

fn origin() -> Name {
    Name::parse("example.com.", None).unwrap()
}

fn parse(text: &str) -> Result<Vec<Record>, ZoneFileError> {
    parse_zone_text(text, Path::new("/nonexistent/test.zone"), &origin())
}
