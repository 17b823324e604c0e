//! Unit tests for the zone-file parser that need no external files.

use super::*;

fn origin() -> Name {
    Name::parse("example.com.", None).unwrap()
}

fn parse(text: &str) -> Result<Vec<Record>, ZoneFileError> {
    parse_zone_text(text, Path::new("/nonexistent/test.zone"), &origin())
}

const SOA: &str = "@ 3600 IN SOA ns hostmaster 1 3600 600 86400 300\n";

/// Parses one record of `rtype` with `text` RDATA at `x.example.com.` and returns its RDATA.
fn rdata_of(rtype: &str, text: &str) -> Result<Vec<u8>, ZoneFileError> {
    let zone = match rtype {
        "SOA" => format!("@ 300 SOA {text}\n"),
        _ => format!("{SOA}x 300 {rtype} {text}\n"),
    };
    let recs = parse(&zone)?;
    Ok(recs.into_iter().last().unwrap().rdata)
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// (type, presentation, wire hex); wire verified with dnspython 2.9 and knotd 3.2.
const VECTORS: &[(&str, &str, &str)] = &[
    ("A", r#"192.0.2.1"#, "c0000201"),
    ("NS", r#"ns1"#, "036e7331076578616d706c6503636f6d00"),
    (
        "CNAME",
        r#"www.example.net."#,
        "03777777076578616d706c65036e657400",
    ),
    (
        "SOA",
        r#"ns hostmaster 2024010101 1h 15m 1w 1d"#,
        "026e73076578616d706c6503636f6d000a686f73746d6173746572076578616d706c6503636f6d0078a3f17500000e100000038400093a8000015180",
    ),
    ("PTR", r#"host"#, "04686f7374076578616d706c6503636f6d00"),
    ("HINFO", r#""PC" "Linux""#, "025043054c696e7578"),
    (
        "MX",
        r#"10 mail"#,
        "000a046d61696c076578616d706c6503636f6d00",
    ),
    ("TXT", r#""a b" c "\065\"""#, "036120620163024122"),
    (
        "RP",
        r#"admin txt"#,
        "0561646d696e076578616d706c6503636f6d0003747874076578616d706c6503636f6d00",
    ),
    (
        "AFSDB",
        r#"1 afs"#,
        "000103616673076578616d706c6503636f6d00",
    ),
    ("X25", r#""311061700956""#, "0c333131303631373030393536"),
    (
        "ISDN",
        r#""150862028003217" "004""#,
        "0f31353038363230323830303332313703303034",
    ),
    (
        "RT",
        r#"10 relay"#,
        "000a0572656c6179076578616d706c6503636f6d00",
    ),
    ("NSAP", r#"0x47.0005.80.005a00"#, "47000580005a00"),
    (
        "PX",
        r#"10 a b"#,
        "000a0161076578616d706c6503636f6d000162076578616d706c6503636f6d00",
    ),
    (
        "GPOS",
        r#""-32.6882" "116.8652" "10.0""#,
        "082d33322e36383832083131362e383635320431302e30",
    ),
    ("AAAA", r#"2001:db8::1"#, "20010db8000000000000000000000001"),
    (
        "LOC",
        r#"51 56 0.123 N 5 54 0.000 E 4.00m 1.00m 10000.00m 10.00m"#,
        "001216138b24c8fb814418c000989810",
    ),
    (
        "LOC",
        r#"52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m"#,
        "000016138b3cf018810cbce0009895b8",
    ),
    (
        "SRV",
        r#"0 5 5060 sip"#,
        "0000000513c403736970076578616d706c6503636f6d00",
    ),
    (
        "NAPTR",
        r#"100 50 "s" "SIP+D2U" "" _sip._udp"#,
        "006400320173075349502b44325500045f736970045f756470076578616d706c6503636f6d00",
    ),
    ("KX", r#"10 kx"#, "000a026b78076578616d706c6503636f6d00"),
    ("CERT", r#"PGP 0 0 AAECAw=="#, "000300000000010203"),
    (
        "DNAME",
        r#"target.example.net."#,
        "06746172676574076578616d706c65036e657400",
    ),
    (
        "APL",
        r#"1:192.168.32.0/21 !1:192.168.38.0/28 2:2001:db8::/32"#,
        "00011503c0a82000011c83c0a8260002200420010db8",
    ),
    (
        "DS",
        r#"60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"#,
        "ec4505012bb183af5f22588179a53b0a98631fad1a292118",
    ),
    (
        "SSHFP",
        r#"1 1 dd465c09cfa51fb45020cc83316fff21b9ec74ac"#,
        "0101dd465c09cfa51fb45020cc83316fff21b9ec74ac",
    ),
    (
        "IPSECKEY",
        r#"10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ=="#,
        "0a0102c0000226010351537986ed35533b6064478eeeb27b5bd74dae149b6e81ba3a0521af82ab7801",
    ),
    (
        "IPSECKEY",
        r#"10 3 2 gw.example.net. AQNRU3mG"#,
        "0a0302026777076578616d706c65036e657400010351537986",
    ),
    ("IPSECKEY", r#"10 0 2 . AQNRU3mG"#, "0a0002010351537986"),
    (
        "RRSIG",
        r#"A 8 3 86400 20240101000000 20231201000000 12345 example.com. AQIDBA=="#,
        "000108030001518065920080656922003039076578616d706c6503636f6d0001020304",
    ),
    (
        "NSEC",
        r#"next A NS SOA RRSIG NSEC TYPE1234"#,
        "046e657874076578616d706c6503636f6d000006620000000003041b000000000000000000000000000000000000000000000000000020",
    ),
    ("DNSKEY", r#"257 3 8 AwEAAQ=="#, "0101030803010001"),
    (
        "DHCID",
        r#"AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA="#,
        "000201636fc0b8271c82825bb1ac5c41cf5351aa69b4febd94e8f17cdb95000da48c40",
    ),
    (
        "NSEC3",
        r#"1 1 12 AABBCCDD 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A RRSIG"#,
        "0101000c04aabbccdd14174eb2409fe28bcb4887a1836f957f0a8425e27b0006400000000002",
    ),
    ("NSEC3PARAM", r#"1 0 0 -"#, "0100000000"),
    (
        "TLSA",
        r#"3 1 1 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"#,
        "0301010123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ),
    ("SMIMEA", r#"3 0 0 0123"#, "0300000123"),
    (
        "HIP",
        r#"2 200100107B1A74DF365639CC39F1D578 AwEAAbdxyhNuSutc rvs.example.net."#,
        "1002000c200100107b1a74df365639cc39f1d57803010001b771ca136e4aeb5c03727673076578616d706c65036e657400",
    ),
    ("CDS", r#"0 0 0 00"#, "0000000000"),
    ("CDNSKEY", r#"0 3 0 AA=="#, "0000030000"),
    ("OPENPGPKEY", r#"AQID"#, "010203"),
    ("CSYNC", r#"66 3 A NS AAAA"#, "000000420003000460000008"),
    (
        "ZONEMD",
        r#"2018031900 1 1 FEBE3D4CE2EC2FFA4BA99D46CD69D6D29711E55217057BEE7EB1A7B641A47BA7FED2DD5B97AE499FAFA4F22C6BD647DE"#,
        "7848b91c0101febe3d4ce2ec2ffa4ba99d46cd69d6d29711e55217057bee7eb1a7b641a47ba7fed2dd5b97ae499fafa4f22c6bd647de",
    ),
    (
        "SVCB",
        r#"1 . alpn=h2,h3 port=8443 ipv4hint=192.0.2.1 mandatory=alpn,port"#,
        "0001000000000400010003000100060268320268330003000220fb00040004c0000201",
    ),
    (
        "HTTPS",
        r#"0 foo.example.org."#,
        "000003666f6f076578616d706c65036f726700",
    ),
    ("SPF", r#""v=spf1 -all""#, "0b763d73706631202d616c6c"),
    ("NID", r#"10 0014:4fff:ff20:ee64"#, "000a00144fffff20ee64"),
    ("L32", r#"10 10.1.2.0"#, "000a0a010200"),
    ("L64", r#"10 2001:0DB8:1140:1000"#, "000a20010db811401000"),
    ("LP", r#"10 l64"#, "000a036c3634076578616d706c6503636f6d00"),
    ("EUI48", r#"00-00-5e-00-53-2a"#, "00005e00532a"),
    ("EUI64", r#"00-00-5e-ef-10-00-00-2a"#, "00005eef1000002a"),
    (
        "URI",
        r#"10 1 "ftp://ftp1.example.com/public""#,
        "000a00016674703a2f2f667470312e6578616d706c652e636f6d2f7075626c6963",
    ),
    (
        "CAA",
        r#"0 issue "ca.example.net""#,
        "0005697373756563612e6578616d706c652e6e6574",
    ),
    (
        "AVC",
        r#""app-name:WOLFGANG|app-class:OAM""#,
        "1f6170702d6e616d653a574f4c4647414e477c6170702d636c6173733a4f414d",
    ),
    (
        "DLV",
        r#"60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"#,
        "ec4505012bb183af5f22588179a53b0a98631fad1a292118",
    ),
    (
        "WKS",
        r#"192.0.2.1 6 25 80"#,
        "c0000201060000004000000000000080",
    ),
    (
        "MINFO",
        r#"rm em"#,
        "02726d076578616d706c6503636f6d0002656d076578616d706c6503636f6d00",
    ),
    ("TA", r#"60485 5 1 2BB183AF"#, "ec4505012bb183af"),
    ("TYPE731", r#"\# 3 ABCDEF"#, "abcdef"),
    ("A", r#"\# 4 0A000001"#, "0a000001"),
    ("NULL", r#"\# 0"#, ""),
    (
        "HTTPS",
        r#"1 . alpn="f\\\\oo\\,bar,h2""#,
        "000100000100 0c08665c6f6f2c62617202 6832",
    ),
    (
        "SVCB",
        r#"1 . key667="hello\210qoo""#,
        "000100029b000968656c6c6fd2716f6f",
    ),
    (
        "SVCB",
        r#"1 . ipv6hint=2001:db8::1,2001:db8::53:1 no-default-alpn"#,
        "00010000020000000600202001 0db8000000000000000000000001 20010db8000000000000000000530001",
    ),
];

#[test]
fn every_type_has_a_vector() {
    for (rtype, text, want) in VECTORS {
        let want: String = want.chars().filter(|c| !c.is_whitespace()).collect();
        let got = rdata_of(rtype, text).unwrap_or_else(|e| panic!("{rtype} {text}: {e}"));
        assert_eq!(hex(&got), want, "{rtype} {text}");
        let t = type_from_str(rtype).unwrap();
        let back = rdata_to_text(t, &got);
        let again = rdata_of(rtype, &back).unwrap_or_else(|e| panic!("{rtype} {back}: {e}"));
        assert_eq!(again, got, "round trip of {rtype} via '{back}'");
    }
}

#[test]
fn header_forms_and_defaults() {
    let recs = parse(
        "$TTL 1h\n@ SOA ns hm 1 2 3 4 5\n  NS ns\nns IN 60 A 192.0.2.1\n\t60 IN AAAA ::1\nb 1w1d TXT x\nc IN TXT y\n",
    )
    .unwrap();
    let ttls: Vec<u32> = recs.iter().map(|r| r.ttl).collect();
    assert_eq!(ttls, [3600, 3600, 60, 60, 691200, 3600]);
    assert_eq!(recs[1].owner, origin());
    assert_eq!(recs[3].owner, Name::parse("ns.example.com.", None).unwrap());
    assert_eq!(recs[5].source.line, 7);
}

#[test]
fn default_ttl_is_knot_default_without_ttl_directive() {
    let recs = parse("@ SOA ns hm 1 2 3 4 5\na 2 TXT x\nb TXT y\n").unwrap();
    assert_eq!(
        recs.iter().map(|r| r.ttl).collect::<Vec<_>>(),
        [3600, 2, 3600]
    );
}

#[test]
fn origin_and_parentheses() {
    let text = "$ORIGIN example.com.\n@ SOA ns hm (\n 1 ; serial\n 2 3 4 5 )\n$ORIGIN sub\nwww A 192.0.2.1\n@ MX 10 mail\n";
    let recs = parse(text).unwrap();
    assert_eq!(recs[1].owner.to_string(), "www.sub.example.com.");
    assert_eq!(recs[1].source.line, 6);
    assert_eq!(
        rdata_to_text(15, &recs[2].rdata),
        "10 mail.sub.example.com."
    );
}

#[test]
fn names_are_lowercased_like_knot() {
    let recs = parse(&format!("{SOA}WWW CNAME Target.Example.NET.\n")).unwrap();
    assert_eq!(recs[1].owner.wire(), b"\x03www\x07example\x03com\x00");
    assert_eq!(rdata_to_text(5, &recs[1].rdata), "target.example.net.");
}

#[test]
fn duplicates_merge_and_ttls_unify() {
    let recs = parse(&format!(
        "{SOA}a 10 A 192.0.2.1\na 20 A 192.0.2.1\na 30 A 192.0.2.2\n"
    ))
    .unwrap();
    assert_eq!(recs.len(), 3);
    assert!(recs[1..].iter().all(|r| r.ttl == 30));
}

#[test]
fn out_of_zone_records_are_dropped() {
    let recs = parse(&format!("{SOA}other.net. A 192.0.2.1\n")).unwrap();
    assert_eq!(recs.len(), 1);
}

/// (zone text, expected error line, message fragment)
const ERRORS: &[(&str, u32, &str)] = &[
    (
        "@ SOA ns hm 1 2 3 4 5\nl LOC \\# 16 00000000 00000000 80000000 00989680\n",
        2,
        "RFC 3597 data is not valid",
    ),
    (
        "@ SOA ns hm 1 2 3 4 5\nbad CNAME x\nbad A 192.0.2.1\n",
        3,
        "CNAME and other data",
    ),
    (
        "@ SOA ns hm 1 2 3 4 5\nc CNAME x\nc CNAME y\n",
        3,
        "multiple CNAME",
    ),
    (
        "@ SOA ns hm 1 2 3 4 5\nd DNAME x\nd DNAME y\n",
        3,
        "multiple DNAME",
    ),
    ("www A 192.0.2.1\n", 1, "missing SOA"),
    (
        "@ SOA ns hm 1 2 3 4 5\n@ SOA ns hm 2 2 3 4 5\n",
        2,
        "multiple SOA",
    ),
    ("@ SOA ns hm 1 2 3 4 5\nx A 1.2.3\n", 2, "invalid IPv4"),
    (
        "@ SOA ns hm 1 2 3 4 5\nx A (\n192.0.2.1\n192.0.2.2 )\n",
        4,
        "trailing data",
    ),
    (
        "@ SOA ns hm 1 2 3 4 5\n\nx TXT \"unterminated\n\n",
        3,
        "unterminated",
    ),
    (
        "@ SOA ns hm 1 2 3 4 5\nx HINFO ( a 1\n b )\n",
        3,
        "trailing data",
    ),
    ("@ SOA ns hm 1 2 3 4 5\nx 1x A 192.0.2.1\n", 2, "time unit"),
    ("@ SOA ns hm 1 2 3 4 5\nx BOGUS 1\n", 2, "unknown RR type"),
    // An empty quoted token where a TTL, class or type may stand (found by fuzzing).
    (
        "@ SOA ns hm 1 2 3 4 5\nx \"\" A 192.0.2.1\n",
        2,
        "unknown RR type",
    ),
    (
        "@ SOA ns hm 1 2 3 4 5\nx TYPE1 \\# 3 000000\n",
        2,
        "not valid for this type",
    ),
    (
        "@ SOA ns hm 1 2 3 4 5\nx TYPE99 \\# 2 00\n",
        2,
        "does not match",
    ),
    ("@ SOA ns hm 1 2 3 4 5\nx CH TXT a\n", 2, "class"),
    (
        "@ SOA ns hm 1 2 3 4 5\nx SVCB 1 . alpn=h2 alpn=h3\n",
        2,
        "duplicate",
    ),
    (
        "@ SOA ns hm 1 2 3 4 5\nx SVCB 1 . mandatory=port\n",
        2,
        "mandatory",
    ),
    (
        "@ SOA ns hm 1 2 3 4 5\nx SVCB 1 . port\n",
        2,
        "missing SVCB",
    ),
    (
        "@ SOA ns hm 1 2 3 4 5\n$INCLUDE missing.zone\n",
        2,
        "cannot read",
    ),
    (
        "@ SOA ns hm 1 2 3 4 5\n$GENERATE 9--10 h$ A 192.0.2.$\n",
        2,
        "range",
    ),
    (
        "@ SOA ns hm 1 2 3 4 5\n$GENERATE 0-4294967295 h$ A 192.0.2.1\n",
        2,
        "more than 65536",
    ),
    ("@ SOA ns hm 1 2 3 4 5\n$TTL\n", 2, "missing $TTL"),
    ("@ SOA ns hm 1 2 3 4 5\nx TKEY a\n", 2, "not allowed"),
    ("@ SOA ns hm 1 2 3 4 5\nx NS ((a))\n", 2, "nested"),
    ("@ SOA ns hm 1 2 3 4 5\n  \n x\\", 3, "backslash"),
    (
        "@ SOA ns hm 1 2 3 4 5\nx RRSIG A 8 2 300 00100227180048 20100221180048 1 e. AA==\n",
        2,
        "invalid time",
    ),
    ("@ SOA ns hm 1 2 3 4 5\nx EUI48 01-23-45-67-89\n", 2, "EUI"),
    ("@ SOA ns hm 1 2 3 4 5\nx DHCID\n", 2, "missing"),
    (
        "@ SOA ns hm 1 2 3 4 5\nlabel\\0651234567890123456789012345678901234567890123456789012345678901234 A 192.0.2.1\n",
        2,
        "label longer",
    ),
];

#[test]
fn errors_carry_lines() {
    for (text, line, fragment) in ERRORS {
        let err = parse(text).expect_err(text);
        assert_eq!(err.line, *line, "{text:?}: {err}");
        assert!(err.message.contains(fragment), "{text:?}: {err}");
        assert!(
            err.to_string()
                .starts_with(&format!("/nonexistent/test.zone:{line}: ")),
            "{err}"
        );
    }
}

#[test]
fn generate_expands() {
    let recs = parse(&format!(
        "{SOA}$GENERATE 1-3/2 host-${{10,3,d}} 60 A 192.0.2.$\n"
    ))
    .unwrap();
    let text: Vec<String> = recs[1..]
        .iter()
        .map(|r| format!("{} {}", r.owner, rdata_to_text(1, &r.rdata)))
        .collect();
    assert_eq!(
        text,
        [
            "host-011.example.com. 192.0.2.1",
            "host-013.example.com. 192.0.2.3"
        ]
    );
    let recs = parse(&format!("{SOA}$GENERATE 10-10 ${{0,3,n}} PTR x\n")).unwrap();
    assert_eq!(recs[1].owner.to_string(), "a.0.0.example.com.");
    // A range ending at the largest value stops there instead of overflowing the counter.
    let recs = parse(&format!("{SOA}$GENERATE 4294967294-4294967295 h$ TXT $\n")).unwrap();
    assert_eq!(recs.len(), 3);
}

#[test]
fn include_scopes_origin() {
    let dir = std::env::temp_dir().join(format!("zf-include-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sub.db"), "a A 192.0.2.1\n").unwrap();
    std::fs::write(dir.join("loop.db"), "$INCLUDE loop.db\n").unwrap();
    let main = dir.join("main.db");
    let text = format!("{SOA}$INCLUDE sub.db sub\nb A 192.0.2.2\n");
    let recs = parse_zone_text(&text, &main, &origin()).unwrap();
    assert_eq!(recs[1].owner.to_string(), "a.sub.example.com.");
    assert_eq!(recs[2].owner.to_string(), "b.example.com.");
    assert!(recs[1].source.file.ends_with("sub.db"));
    let err = parse_zone_text(&format!("{SOA}$INCLUDE loop.db\n"), &main, &origin()).unwrap_err();
    assert!(err.message.contains("too deeply"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compression_and_additional_helpers() {
    let soa = rdata_of("SOA", "ns hm 1 2 3 4 5").unwrap();
    assert_eq!(&*compressible_names(6, &soa), &[0, 16]);
    let mx = rdata_of("MX", "10 mail").unwrap();
    assert_eq!(&*compressible_names(15, &mx), &[2]);
    assert!(compressible_names(33, &mx).is_empty());
    let target = additional_target(15, &mx).unwrap();
    assert_eq!(target.to_string(), "mail.example.com.");
    let srv = rdata_of("SRV", "0 5 5060 sip").unwrap();
    assert_eq!(
        additional_target(33, &srv).unwrap().to_string(),
        "sip.example.com."
    );
    let naptr = rdata_of("NAPTR", r#"100 50 "s" "SIP+D2U" "" _sip._udp"#).unwrap();
    assert!(
        additional_target(35, &naptr).is_none(),
        "knotd adds nothing for NAPTR"
    );
    let svcb = rdata_of("SVCB", "1 svc port=443").unwrap();
    assert_eq!(
        additional_target(64, &svcb).unwrap().to_string(),
        "svc.example.com."
    );
    assert!(additional_target(1, &[192, 0, 2, 1]).is_none());
}

#[test]
fn long_txt_is_split_and_quotes_span_lines() {
    let long = "a".repeat(300);
    let rdata = rdata_of("TXT", &format!("\"{long}\" \"x\ny\"")).unwrap();
    assert_eq!(rdata.len(), 1 + 255 + 1 + 45 + 1 + 3);
    assert_eq!((rdata[0], rdata[256]), (255, 45));
    assert_eq!(&rdata[302..], b"\x03x\ny");
    let recs = parse(&format!("{SOA}a TXT \"1\n2\"\nb A 192.0.2.1\n")).unwrap();
    assert_eq!(recs[2].source.line, 4);
}

#[test]
fn text_output() {
    assert_eq!(rdata_to_text(1, &[192, 0, 2, 1]), "192.0.2.1");
    assert_eq!(rdata_to_text(1, &[1, 2]), "\\# 2 0102");
    assert_eq!(rdata_to_text(4000, &[]), "\\# 0");
    assert_eq!(rdata_to_text(16, b"\x03a\"b"), "\"a\\\"b\"");
    assert_eq!(type_to_string(28), "AAAA");
}

#[test]
fn rfc3597_data_of_a_known_type_reads_as_its_text_form_would() {
    // CNAME `A.` as generic data: the name is lowercased as in text.
    assert_eq!(rdata_of("CNAME", r"\# 3 014100").unwrap(), b"\x01a\x00");
    // A type without a text form keeps its bytes.
    assert_eq!(rdata_of("TYPE65280", r"\# 3 014100").unwrap(), b"\x01A\x00");
}
