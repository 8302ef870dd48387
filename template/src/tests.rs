//! Unit tests of the template engine.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::functions::lookup_function;
use crate::printf::format_float_shortest;
use crate::{SUPPORTED_FUNCTIONS, render};

const SECRET: &str = "s3cr3t-P@ss";

fn data(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect()
}

fn sample() -> BTreeMap<String, Vec<u8>> {
    data(&[
        ("username", b"admin"),
        ("password", SECRET.as_bytes()),
        ("user", b"alice"),
        ("pass", b"wonder land"),
        ("token", b"a\"b<c>&d"),
        ("cert", b"-----BEGIN-----\nAAAA\n-----END-----"),
        ("empty", b""),
        ("num", b"42"),
        ("json", br#"{"a":[1,2.5,"x"],"b":{"c":true}}"#),
    ])
}

/// Renders against `sample()` and returns the output as text.
fn ok(template: &str) -> String {
    match render("key", template, &sample()) {
        Ok(out) => String::from_utf8_lossy(&out).into_owned(),
        Err(error) => panic!("{template:?} failed: {error}"),
    }
}

/// Renders against `sample()` and returns the error text.
fn err(template: &str) -> String {
    match render("key", template, &sample()) {
        Ok(out) => panic!("{template:?} rendered {:?}", String::from_utf8_lossy(&out)),
        Err(error) => error.to_string(),
    }
}

#[test]
fn plain_text_and_fields() {
    assert_eq!(ok("hello"), "hello");
    assert_eq!(ok(""), "");
    assert_eq!(
        ok("{{ .username }}:{{ .password }}"),
        format!("admin:{SECRET}")
    );
    assert_eq!(ok("{{.username}}"), "admin");
    assert_eq!(ok("a{{/* comment */}}b"), "ab");
    assert_eq!(ok("a {{- /* comment */ -}} b"), "ab");
}

#[test]
fn missing_key_prints_no_value_like_go() {
    assert_eq!(ok("[{{ .nope }}]"), "[<no value>]");
    assert_eq!(ok("[{{ index . \"nope\" }}]"), "[]");
    assert_eq!(ok("{{ .nope | default \"d\" }}"), "d");
    assert_eq!(ok("{{ if .nope }}y{{ else }}n{{ end }}"), "n");
    assert_eq!(ok("{{ .nope.deeper }}"), "<no value>");
}

#[test]
fn trim_markers() {
    assert_eq!(ok("a  {{- .user -}}  b"), "aaliceb");
    assert_eq!(ok("a \n\t{{- .user }} b"), "aalice b");
    assert_eq!(ok("a {{ .user -}}\n\n b"), "a aliceb");
    assert_eq!(ok("{{-3}}"), "-3");
    assert_eq!(ok("x\n{{- if true }}\n  y\n{{- end }}\n"), "x\n  y\n");
}

#[test]
fn pipelines_pass_the_value_last() {
    assert_eq!(ok("{{ .user | upper }}"), "ALICE");
    assert_eq!(ok("{{ .user | replace \"a\" \"4\" }}"), "4lice");
    assert_eq!(ok("{{ .user | printf \"%s!\" }}"), "alice!");
    assert_eq!(ok("{{ .user | upper | quote }}"), "\"ALICE\"");
    assert_eq!(ok("{{ \"x\" | printf \"%s-%s\" .user }}"), "alice-x");
    assert_eq!(
        ok("{{ printf \"%s:%s\" .user .pass | b64enc }}"),
        "YWxpY2U6d29uZGVyIGxhbmQ="
    );
}

#[test]
fn parenthesised_calls_and_chains() {
    assert_eq!(
        ok("{{ upper (printf \"%s-%s\" .user .username) }}"),
        "ALICE-ADMIN"
    );
    assert_eq!(ok("{{ (dict \"a\" \"b\").a }}"), "b");
    assert_eq!(
        ok("{{ $d := dict \"x\" (dict \"y\" \"z\") }}{{ $d.x.y }}"),
        "z"
    );
    assert_eq!(ok("{{ len (list 1 2 3) }}"), "3");
}

#[test]
fn conditionals() {
    assert_eq!(ok("{{ if .user }}yes{{ end }}"), "yes");
    assert_eq!(ok("{{ if .empty }}yes{{ else }}no{{ end }}"), "no");
    let chain = "{{ if eq .user \"bob\" }}b{{ else if eq .user \"alice\" }}a{{ else }}x{{ end }}";
    assert_eq!(ok(chain), "a");
    assert_eq!(ok("{{ if and .user .empty }}y{{ else }}n{{ end }}"), "n");
    assert_eq!(ok("{{ if or .empty .user }}y{{ end }}"), "y");
    assert_eq!(ok("{{ or .empty \"fallback\" }}"), "fallback");
    assert_eq!(ok("{{ and .user .username }}"), "admin");
    assert_eq!(ok("{{ if not .empty }}y{{ end }}"), "y");
    assert_eq!(ok("{{ with .user }}<{{ . }}>{{ end }}"), "<alice>");
    assert_eq!(ok("{{ with .empty }}x{{ else }}none{{ end }}"), "none");
    assert_eq!(
        ok("{{ with .empty }}x{{ else with .user }}{{ . }}{{ end }}"),
        "alice"
    );
}

#[test]
fn and_or_short_circuit() {
    assert_eq!(ok("{{ and false (fail \"boom\") }}"), "false");
    assert_eq!(ok("{{ or true (fail \"boom\") }}"), "true");
}

#[test]
fn variables() {
    assert_eq!(ok("{{ $x := .user }}{{ $x }}"), "alice");
    assert_eq!(ok("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}"), "2");
    assert_eq!(ok("{{ $.user }}"), "alice");
    assert_eq!(ok("{{ with .user }}{{ $.username }}{{ end }}"), "admin");
    assert_eq!(
        ok("{{ $x := \"out\" }}{{ if true }}{{ $x := \"in\" }}{{ $x }}{{ end }}{{ $x }}"),
        "inout"
    );
    assert_eq!(
        ok("{{ $x := \"a\" }}{{ range list 1 2 }}{{ $x = \"b\" }}{{ end }}{{ $x }}"),
        "b"
    );
}

#[test]
fn range_over_lists_maps_and_numbers() {
    assert_eq!(
        ok("{{ range list \"a\" \"b\" }}[{{ . }}]{{ end }}"),
        "[a][b]"
    );
    assert_eq!(
        ok("{{ range $i, $e := list \"a\" \"b\" }}{{ $i }}={{ $e }} {{ end }}"),
        "0=a 1=b "
    );
    assert_eq!(
        ok("{{ range $e := list \"a\" \"b\" }}{{ $e }}{{ end }}"),
        "ab"
    );
    assert_eq!(
        ok("{{ range $k, $v := dict \"b\" 2 \"a\" 1 }}{{ $k }}={{ $v }};{{ end }}"),
        "a=1;b=2;"
    );
    assert_eq!(
        ok("{{ range $k, $v := . }}{{ if eq $k \"user\" }}{{ $v }}{{ end }}{{ end }}"),
        "alice"
    );
    assert_eq!(ok("{{ range list }}x{{ else }}empty{{ end }}"), "empty");
    assert_eq!(ok("{{ range .nope }}x{{ else }}none{{ end }}"), "none");
    assert_eq!(ok("{{ range 3 }}{{ . }}{{ end }}"), "012");
    assert_eq!(
        ok(
            "{{ range list 1 2 3 4 }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}"
        ),
        "13"
    );
    assert_eq!(
        ok("{{ range splitList \",\" \"a,b\" }}{{ . }};{{ end }}"),
        "a;b;"
    );
}

#[test]
fn define_template_and_block() {
    assert_eq!(
        ok("{{ define \"t\" }}<{{ . }}>{{ end }}{{ template \"t\" .user }}"),
        "<alice>"
    );
    assert_eq!(ok("{{ block \"b\" .user }}[{{ . }}]{{ end }}"), "[alice]");
    assert_eq!(
        ok("{{ define \"key\" }}from define{{ end }}"),
        "from define"
    );
    assert!(err("{{ template \"nope\" }}").contains("template \"nope\" not defined"));
}

#[test]
fn literals() {
    assert_eq!(ok(r#"{{ "a\tb\n\x41\u00e9\101" }}"#), "a\tb\nAé\u{41}");
    assert_eq!(ok("{{ `raw \\n` }}"), "raw \\n");
    assert_eq!(ok("{{ 'a' }}"), "97");
    assert_eq!(
        ok("{{ 0x1F }} {{ 1_000 }} {{ 010 }} {{ -5 }} {{ 1.5 }} {{ 1e3 }}"),
        "31 1000 8 -5 1.5 1000"
    );
    assert_eq!(ok("{{ true }} {{ false }}"), "true false");
    assert_eq!(ok("{{ print nil }}"), "<nil>");
}

#[test]
fn builtin_functions() {
    assert_eq!(
        ok("{{ len .user }} {{ len (list 1 2) }} {{ len (dict \"a\" 1) }}"),
        "5 2 1"
    );
    assert_eq!(ok("{{ index . \"user\" }}"), "alice");
    assert_eq!(ok("{{ index (list \"a\" \"b\") 1 }}"), "b");
    assert_eq!(ok("{{ index (dict \"a\" (list 1 2)) \"a\" 0 }}"), "1");
    assert_eq!(ok("{{ index .user 0 }}"), "97");
    assert_eq!(
        ok("{{ slice .user 1 3 }} {{ slice (list 1 2 3) 1 }}"),
        "li [2 3]"
    );
    assert_eq!(ok("{{ print \"a\" 1 2 \"b\" }}"), "a1 2b");
    assert_eq!(ok("{{ println \"a\" 1 }}"), "a 1\n");
    assert_eq!(
        ok("{{ eq 1 2 1 }} {{ eq .user \"alice\" }} {{ ne 1 2 }}"),
        "true true true"
    );
    assert_eq!(
        ok("{{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1.5 2.5 }}"),
        "true true true false"
    );
    assert_eq!(ok("{{ html .token }}"), "a&#34;b&lt;c&gt;&amp;d");
    assert_eq!(ok("{{ js .token }}"), "a\\\"b\\u003Cc\\u003E\\u0026d");
    assert_eq!(ok("{{ urlquery .pass \"&=\" }}"), "wonder+land%26%3D");
    assert_eq!(ok("{{ not 0 }}"), "true");
}

#[test]
fn printf_verbs() {
    assert_eq!(
        ok("{{ printf \"%s|%d|%v|%q|%x|%%\" .user 42 true .user .user }}"),
        "alice|42|true|\"alice\"|616c696365|%"
    );
    assert_eq!(
        ok("{{ printf \"%5s|%-5s|%05d|%x|%X|%o|%b\" \"a\" \"b\" 42 255 255 8 5 }}"),
        "    a|b    |00042|ff|FF|10|101"
    );
    assert_eq!(
        ok("{{ printf \"%.2f|%e|%g|%v\" 3.14159 1234.5 0.5 1e6 }}"),
        "3.14|1.234500e+03|0.5|1e+06"
    );
    assert_eq!(ok("{{ printf \"%d\" \"x\" }}"), "%!d(string=x)");
    assert_eq!(ok("{{ printf \"%s %s\" \"x\" }}"), "x %!s(MISSING)");
    assert_eq!(ok("{{ printf \"%s\" \"x\" \"y\" }}"), "x%!(EXTRA string=y)");
    assert_eq!(ok("{{ printf \"%v\" (list 1 \"a\") }}"), "[1 a]");
    assert_eq!(ok("{{ printf \"%v\" (dict \"k\" \"v\") }}"), "map[k:v]");
    assert_eq!(
        ok("{{ printf \"%.3s|%c|%U\" \"abcdef\" 65 65 }}"),
        "abc|A|U+0041"
    );
    assert_eq!(ok("{{ printf \"%s\" .nope }}"), "%!s(<nil>)");
}

#[test]
fn float_precisions_beyond_rusts_formatter_match_go() {
    // Found by the `template` fuzz target: Rust's formatter panics on a precision over 65,535,
    // Go accepts up to 1,000,000.
    let found = "{{ printf \"%-8.3q|%x|%*d|\tv|%022.82223v\" .user .bin 43 (list ) 0.e14159 }}";
    let _ = render("key", found, &sample());
    assert_eq!(ok("{{ printf \"%.82223v\" 0.5 }}"), "0.5");
    assert_eq!(ok("{{ printf \"%.70000g\" 0.1 }}").len(), 57);
    let fixed = ok("{{ printf \"%.70000f\" 0.5 }}");
    assert_eq!((fixed.len(), &fixed[..4]), (70_002, "0.50"));
    assert!(fixed[2..].bytes().skip(1).all(|b| b == b'0'));
    let exponent = ok("{{ printf \"%.70000e\" 1.5 }}");
    assert_eq!(
        (
            exponent.len(),
            &exponent[..3],
            &exponent[exponent.len() - 4..]
        ),
        (70_006, "1.5", "e+00")
    );
    // The exact expansion of 0.1 has 55 significant digits, then zeros.
    assert_eq!(
        ok("{{ printf \"%.60f\" 0.1 }}"),
        "0.100000000000000005551115123125782702118158340454101562500000"
    );
}

#[test]
fn sprig_string_functions() {
    assert_eq!(ok("{{ toString 42 }} {{ toString .user }}"), "42 alice");
    assert_eq!(
        ok("{{ quote .user \"b\\\"c\" }} {{ squote .user }}"),
        "\"alice\" \"b\\\"c\" 'alice'"
    );
    assert_eq!(ok("[{{ trim \"  x y \\n\" }}]"), "[x y]");
    assert_eq!(ok("{{ trimAll \"$\" \"$$5.00$\" }}"), "5.00");
    assert_eq!(
        ok("{{ trimPrefix \"al\" .user }} {{ trimSuffix \"ce\" .user }}"),
        "ice ali"
    );
    assert_eq!(
        ok("{{ upper \"héllo\" }} {{ lower \"HÉLLO\" }} {{ title \"hello wide-world\" }}"),
        "HÉLLO héllo Hello Wide-World"
    );
    assert_eq!(ok("{{ replace \" \" \"-\" .pass }}"), "wonder-land");
    assert_eq!(ok("{{ repeat 3 \"ab\" }}"), "ababab");
    assert_eq!(
        ok("{{ substr 1 3 .user }} {{ substr 2 99 .user }} {{ substr -1 2 .user }}"),
        "li ice al"
    );
    assert_eq!(
        ok("{{ trunc 3 .user }} {{ trunc -2 .user }} {{ trunc 99 .user }}"),
        "ali ce alice"
    );
    assert_eq!(
        ok("{{ contains \"lic\" .user }} {{ hasPrefix \"al\" .user }} {{ hasSuffix \"x\" .user }}"),
        "true true false"
    );
    assert_eq!(ok("{{ cat \"a\" 1 nil \"b\" }}"), "a 1 b");
    assert_eq!(ok("{{ indent 2 \"a\\nb\" }}"), "  a\n  b");
    assert_eq!(ok("{{ nindent 2 \"a\" }}"), "\n  a");
    assert_eq!(ok("{{ nospace \" a b\\tc \" }}"), "abc");
}

#[test]
fn sprig_defaults_and_flow() {
    assert_eq!(
        ok("{{ default \"d\" .empty }} {{ default \"d\" .user }} {{ .empty | default \"p\" }}"),
        "d alice p"
    );
    assert_eq!(
        ok("{{ default 5 0 }} {{ default \"x\" false }} {{ default \"y\" (list) }}"),
        "5 x y"
    );
    assert_eq!(
        ok("{{ empty .empty }} {{ empty .user }} {{ empty 0 }} {{ empty (dict) }}"),
        "true false true true"
    );
    assert_eq!(ok("{{ coalesce .empty .nope .user }}"), "alice");
    assert_eq!(
        ok("{{ ternary \"y\" \"n\" true }} {{ true | ternary \"y\" \"n\" }}"),
        "y y"
    );
    assert_eq!(ok("{{ required \"need user\" .user }}"), "alice");
    assert_eq!(
        err("{{ required \"need it\" .empty }}"),
        "template: key:1:3: executing \"key\" at <required \"need it\" ....>: error calling required: need it"
    );
    assert!(err("{{ fail \"stop here\" }}").ends_with("error calling fail: stop here"));
}

#[test]
fn sprig_lists_and_dicts() {
    assert_eq!(ok("{{ join \",\" (list \"a\" 1 nil \"b\") }}"), "a,1,b");
    assert_eq!(
        ok("{{ $s := split \",\" \"a,b\" }}{{ $s._0 }}{{ $s._1 }}"),
        "ab"
    );
    assert_eq!(ok("{{ splitList \",\" \"a,,b\" | len }}"), "3");
    assert_eq!(ok("{{ list 1 \"a\" (list 2) }}"), "[1 a [2]]");
    assert_eq!(
        ok("{{ first (list 1 2) }} {{ last (list 1 2) }} {{ append (list 1) 2 }}"),
        "1 2 [1 2]"
    );
    assert_eq!(
        ok("{{ has 2 (list 1 2) }} {{ has \"x\" (list 1 2) }}"),
        "true false"
    );
    assert_eq!(
        ok("{{ sortAlpha (list \"b\" \"a\" \"c\") }} {{ toStrings (list 1 2) }}"),
        "[a b c] [1 2]"
    );
    assert_eq!(
        ok("{{ $d := dict \"a\" 1 \"b\" }}{{ $d.a }}[{{ $d.b }}]"),
        "1[]"
    );
    assert_eq!(
        ok("{{ $d := dict \"a\" 1 }}{{ get $d \"a\" }}[{{ get $d \"z\" }}]"),
        "1[]"
    );
    assert_eq!(
        ok("{{ $d := dict }}{{ $_ := set $d \"k\" \"v\" }}{{ $d.k }} {{ hasKey $d \"k\" }}"),
        "v true"
    );
    assert_eq!(
        ok("{{ $d := dict \"k\" 1 }}{{ $_ := unset $d \"k\" }}{{ hasKey $d \"k\" }}"),
        "false"
    );
    assert_eq!(
        ok("{{ keys (dict \"b\" 1 \"a\" 2) }} {{ values (dict \"b\" 1 \"a\" 2) }}"),
        "[a b] [2 1]"
    );
    assert_eq!(ok("{{ dict \"a\" 1 \"b\" (list 1) }}"), "map[a:1 b:[1]]");
    assert!(err("{{ $d := dict }}{{ set $d \"self\" $d }}").contains("a map can't contain itself"));
    assert!(
        err("{{ keys . }}").contains("expected map[string]interface {}; got map[string]string")
    );
}

#[test]
fn sprig_json() {
    assert_eq!(
        ok("{\"auth\": {{ toJson .token }}}"),
        r#"{"auth": "a\"b\u003cc\u003e\u0026d"}"#
    );
    assert_eq!(ok("{{ toRawJson .token }}"), r#""a\"b<c>&d""#);
    assert_eq!(
        ok("{{ toJson (dict \"b\" (list 1 2.5 true nil) \"a\" \"x\") }}"),
        r#"{"a":"x","b":[1,2.5,true,null]}"#
    );
    assert_eq!(
        ok("{{ toPrettyJson (dict \"a\" (list 1) \"b\" (dict)) }}"),
        "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}"
    );
    assert_eq!(
        ok("{{ toJson \"\\n\\u2028\\x01\" }}"),
        r#""\n\u2028\u0001""#
    );
    assert_eq!(
        ok("{{ $j := fromJson .json }}{{ $j.b.c }} {{ index $j.a 1 }} {{ toJson $j }}"),
        r#"true 2.5 {"a":[1,2.5,"x"],"b":{"c":true}}"#
    );
    assert_eq!(
        ok("{{ toJson 1e21 }} {{ toJson 0.000001 }} {{ toJson 1e-7 }}"),
        "1e+21 0.000001 1e-7"
    );
}

#[test]
fn dockerconfigjson() {
    let template = r#"{{ $auth := printf "%s:%s" .user .pass | b64enc }}{{ dict "auths" (dict "registry.example.com" (dict "username" .user "password" .pass "auth" $auth)) | toJson }}"#;
    assert_eq!(
        ok(template),
        r#"{"auths":{"registry.example.com":{"auth":"YWxpY2U6d29uZGVyIGxhbmQ=","password":"wonder land","username":"alice"}}}"#
    );
}

#[test]
fn certificate_with_nindent() {
    assert_eq!(
        ok("tls:\n  cert: |{{ .cert | nindent 4 }}"),
        "tls:\n  cert: |\n    -----BEGIN-----\n    AAAA\n    -----END-----"
    );
}

#[test]
fn sprig_encodings_and_digests() {
    assert_eq!(
        ok("{{ b64enc .user }} {{ b64dec \"YWxpY2U=\" }}"),
        "YWxpY2U= alice"
    );
    assert_eq!(
        ok("{{ b64dec \"!!\" }}"),
        "illegal base64 data at input byte 0"
    );
    assert_eq!(
        ok("{{ b32enc \"alice\" }} {{ b32enc \"a\" }} {{ b32dec \"ME======\" }}"),
        "MFWGSY3F ME====== a"
    );
    assert_eq!(ok("{{ b32dec (b32enc \"hello world\") }}"), "hello world");
    assert_eq!(
        ok("{{ sha1sum \"abc\" }}"),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        ok("{{ sha256sum \"abc\" }}"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(ok("{{ adler32sum \"Wikipedia\" }}"), "300286872");
    assert_eq!(ok("{{ sha512sum \"\" | trunc 16 }}"), "cf83e1357eefb8bd");
}

#[test]
fn sprig_numbers() {
    assert_eq!(
        ok(
            "{{ atoi .num }} {{ atoi \"x\" }} {{ int \"12\" }} {{ int64 3.9 }} {{ float64 \"1.5\" }}"
        ),
        "42 0 12 3 1.5"
    );
    assert_eq!(
        ok(
            "{{ add 1 2 3 }} {{ add1 .num }} {{ sub 5 7 }} {{ mul 2 3 4 }} {{ div 7 2 }} {{ mod 7 2 }}"
        ),
        "6 43 -2 24 3 1"
    );
    assert_eq!(ok("{{ max 1 5 3 }} {{ min 4 -1 }}"), "5 -1");
    assert!(
        err("{{ div 1 0 }}").ends_with("error calling div: runtime error: integer divide by zero")
    );
}

#[test]
fn binary_values_pass_through() {
    let binary: Vec<u8> = (0..=255u8).collect();
    let values = data(&[("bin", &binary)]);
    assert_eq!(
        render("bin", "{{ .bin }}", &values).ok().as_deref(),
        Some(&binary)
    );
    let mut expected = b"<".to_vec();
    expected.extend_from_slice(&binary);
    expected.push(b'>');
    assert_eq!(
        render("bin", "<{{ index . \"bin\" }}>", &values)
            .ok()
            .as_deref(),
        Some(&expected)
    );
    let encoded = render("bin", "{{ .bin | b64enc }}", &values).unwrap_or_default();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_default();
    assert_eq!(decoded, binary);
    let invalid = data(&[("bin", b"\xff\xfe")]);
    assert_eq!(
        render("bin", "{{ toJson .bin }}", &invalid).ok().as_deref(),
        Some(&br#""\ufffd\ufffd""#.to_vec())
    );
    assert_eq!(
        render("bin", "{{ printf \"%q\" .bin }}", &invalid)
            .ok()
            .as_deref(),
        Some(&br#""\xff\xfe""#.to_vec())
    );
}

#[test]
fn environment_functions_are_not_defined() {
    assert_eq!(
        err("{{ env \"HOME\" }}"),
        "template: key:1: function \"env\" not defined"
    );
    assert_eq!(
        err("x\n{{ expandenv \"$HOME\" }}"),
        "template: key:2: function \"expandenv\" not defined"
    );
    assert_eq!(
        err("{{ getHostByName \"example.com\" }}"),
        "template: key:1: function \"getHostByName\" not defined"
    );
    // A parse error is reported even when the action would never run.
    assert!(err("{{ if false }}{{ env \"X\" }}{{ end }}").contains("function \"env\" not defined"));
}

#[test]
fn parse_errors() {
    assert_eq!(err("{{ .user "), "template: key:1: unclosed action");
    assert_eq!(err("{{ if .user }}x"), "template: key:1: unexpected EOF");
    assert_eq!(err("{{ end }}"), "template: key:1: unexpected {{end}}");
    assert_eq!(err("{{ else }}"), "template: key:1: unexpected {{else}}");
    assert_eq!(err("{{ }}"), "template: key:1: missing value for command");
    assert_eq!(
        err("{{ $x }}"),
        "template: key:1: undefined variable \"$x\""
    );
    assert_eq!(
        err("{{ \"abc }}"),
        "template: key:1: unterminated quoted string"
    );
    assert_eq!(err("{{ (1 }}"), "template: key:1: unclosed left paren");
    assert_eq!(
        err("{{ 1) }}"),
        "template: key:1: unexpected right paren U+0029 ')'"
    );
    assert_eq!(
        err("{{ break }}"),
        "template: key:1: {{break}} outside {{range}}"
    );
    assert_eq!(
        err("{{ .a | 3 }}"),
        "template: key:1: non executable command in pipeline stage 2"
    );
    assert_eq!(err("{{/* x "), "template: key:1: unclosed comment");
    assert_eq!(
        err("{{ 3x }}"),
        "template: key:1: bad number syntax: \"3x\""
    );
    assert_eq!(
        err("{{ \"a\".b }}"),
        "template: key:1: unexpected . after term \"\\\"a\\\"\""
    );
    assert_eq!(
        err("{{ range $a, $b, $c := . }}{{ end }}"),
        "template: key:1: too many declarations in range"
    );
}

#[test]
fn execution_errors() {
    assert_eq!(
        err("{{ upper 1 2 }}"),
        "template: key:1:3: executing \"key\" at <upper 1 2>: wrong number of args for upper: want 1 got 2"
    );
    assert_eq!(
        err("line1\n  {{ .user.name }}"),
        "template: key:2:10: executing \"key\" at <.user.name>: can't evaluate field name in type string"
    );
    assert_eq!(
        err("{{ upper 3 }}"),
        "template: key:1:9: executing \"key\" at <3>: wrong type for value; expected string; got int"
    );
    assert_eq!(
        err("{{ .nope | upper }}"),
        "template: key:1:11: executing \"key\" at <upper>: invalid value; expected string"
    );
    assert!(err("{{ .user 1 }}").contains("user is not a method but has arguments"));
    assert!(err("{{ nil }}").contains("nil is not a command"));
    assert!(
        err("{{ eq 1 \"a\" }}").contains("error calling eq: incompatible types for comparison")
    );
    assert!(err("{{ index (list 1) 5 }}").contains("error calling index: index out of range"));
    assert!(
        err("{{ range true }}{{ end }}").contains("range can't iterate over value of type bool")
    );
    assert!(err("{{ repeat -1 \"x\" }}").contains("negative Repeat count"));
    assert!(err("{{ 99999999999999999999 }}").contains("overflows int"));
}

#[test]
fn errors_never_contain_values() {
    let templates = [
        "{{ fail .password }}",
        "{{ fail (printf \"bad %s\" .password) }}",
        "{{ required .password .empty }}",
        "{{ .empty | required (.password) }}",
        "{{ .password.field }}",
        "{{ index .password 99 }}",
        "{{ range .password }}{{ end }}",
        "{{ upper .password 1 }}",
        "{{ eq .password 1 }}",
        "{{ substr 0 99 .password | repeat -1 }}",
        "{{ div (len .password) 0 }}",
        "{{ template \"x\" .password }}",
        "{{ $x := .password }}{{ $x.y }}",
        "{{ lt .password (list) }}",
        "{{ env .password }}",
        "{{ .password | b64enc | b64dec | atoi | upper }}",
    ];
    for template in templates {
        let message = err(template);
        assert!(!message.contains(SECRET), "{template}: {message}");
        assert!(!message.contains("s3cr3t"), "{template}: {message}");
    }
    assert!(err("{{ fail .password }}").contains("withheld"));
}

#[test]
fn malformed_templates_never_panic() {
    let fragments = [
        "{{", "}}", "{{-", "-}}", "(", ")", "|", "$", "$x", ":=", "=", ",", ".", "..", "\"", "`",
        "'", "/*", "*/", "if", "else", "end", "range", "with", "define", "template", "block",
        "break", "continue", "nil", "true", "1", "-", "+", "0x", "1e", "'\\", "\\", "printf",
        "index", "dict", "set", "\n", " ", "é", "\u{0}", "{{/*", "*/}}", ".a.b",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..4000 {
        let mut template = String::new();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 12) as usize;
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            template.push_str(fragments[(seed % fragments.len() as u64) as usize]);
            if seed.is_multiple_of(3) {
                template.push(' ');
            }
        }
        let _ = render("fuzz", &template, &sample());
    }
}

#[test]
fn runaway_templates_are_stopped() {
    let deep = "(".repeat(500) + "1" + &")".repeat(500);
    assert!(err(&format!("{{{{ {deep} }}}}")).contains("max expression depth exceeded"));
    let recursive = "{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}";
    assert!(err(recursive).contains("maximum template depth"));
    assert!(err("{{ range 100000000 }}{{ end }}").contains("operations"));
    assert!(err("{{ repeat 100000000 \"0123456789\" }}").contains("larger than"));
    let doubling =
        "{{ $s := \"xxxxxxxxxxxxxxxx\" }}{{ range 40 }}{{ $s = printf \"%s%s\" $s $s }}{{ end }}";
    assert!(err(doubling).contains("larger than"));
    let nested = "{{ $d := dict }}{{ range 300 }}{{ $d = dict \"x\" $d }}{{ end }}{{ toJson $d | len }} {{ $d | len }}";
    assert_eq!(ok(nested), "0 1");
}

#[test]
fn functions_that_walk_lists_and_maps_are_charged_before_they_run() {
    let big = "{{ $s := repeat 4000000 \"a\" }}";
    // Ten references to one 4 MB string: cheap to build, 40 MB to print or join.
    let shared = format!("{big}{{{{ $l := list $s $s $s $s $s $s $s $s $s $s }}}}");
    assert_eq!(ok(&format!("{shared}{{{{ len $l }}}}")), "10");
    for walk in [
        "join \"\" $l",
        "toJson $l",
        "print $l",
        "printf \"%v\" $l",
        "has \"x\" $l",
    ] {
        let message = err(&format!("{shared}{{{{ {walk} }}}}"));
        assert!(
            message.ends_with("the arguments of a function are larger than 4194304 bytes"),
            "{walk}: {message}"
        );
    }
    assert!(
        err(&format!("{shared}{{{{ $l }}}}")).contains("rendered more than 1048576 bytes"),
        "printing a list is charged to the rendered bytes"
    );
    // Sharing doubles the printed size per step: the walk stops at the limit.
    let doubling = "{{ $l := list \"aaaaaaaa\" }}{{ range 60 }}{{ $l = list $l $l }}{{ end }}";
    assert_eq!(ok(&format!("{doubling}{{{{ len $l }}}}")), "2");
    let message = err(&format!("{doubling}{{{{ toJson $l }}}}"));
    assert!(
        message.contains("(limit per SealedSecret)") || message.contains("larger than"),
        "{message}"
    );
}

#[test]
fn outputs_that_multiply_their_inputs_are_bounded() {
    // A 1 MB separator between 100 elements.
    let message = err("{{ join (repeat 1000000 \"x\") (splitList \"\" (repeat 100 \"a\")) }}");
    assert!(
        message.ends_with("result would be larger than 4194304 bytes"),
        "{message}"
    );
    // A width applies to every element of a list.
    let message = err("{{ printf \"%1000000v\" (splitList \"\" (repeat 1000 \"a\")) }}");
    assert!(
        message.ends_with("result would be larger than 4194304 bytes"),
        "{message}"
    );
    let message = err("{{ printf \"%1000000d%1000000d%1000000d%1000000d%1000000d\" 1 2 3 4 5 }}");
    assert!(
        message.ends_with("result would be larger than 4194304 bytes"),
        "{message}"
    );
    // Indentation of deeply nested JSON.
    let nested =
        "{{ $l := splitList \"\" (repeat 50000 \"a\") }}{{ range 90 }}{{ $l = list $l }}{{ end }}";
    assert_eq!(ok(&format!("{nested}{{{{ toJson $l | len }}}}")), "200181");
    let message = err(&format!("{nested}{{{{ toPrettyJson $l | len }}}}"));
    assert!(
        message.ends_with("result would be larger than 4194304 bytes"),
        "{message}"
    );
    assert_eq!(ok("{{ toJson (list 1 2) }}"), "[1,2]");
}

#[test]
fn string_searches_take_linear_time() {
    // Both would take hours with a naive search or cutset scan.
    assert_eq!(
        ok("{{ contains (printf \"%sb\" (repeat 1000000 \"a\")) (repeat 4000000 \"a\") }}"),
        "false"
    );
    assert_eq!(
        ok(
            "{{ replace (printf \"%sb\" (repeat 1000000 \"a\")) \"\" (repeat 4000000 \"a\") | len }}"
        ),
        "4000000"
    );
    assert_eq!(
        ok("{{ trimAll (repeat 1000000 \"ab\") (repeat 1000000 \"c\") | len }}"),
        "1000000"
    );
}

#[test]
fn misc_semantics() {
    assert_eq!(
        ok("{{ eq .nope \"x\" }} {{ \"a\" | eq \"a\" }} {{ .user | len }}"),
        "false true 5"
    );
    assert_eq!(ok("{{ .user | default \"x\" | upper }}"), "ALICE");
    assert_eq!(
        ok("{{ $d := dict \"n\" nil }}{{ $d.n }} {{ index $d \"zz\" }}"),
        "<nil> <nil>"
    );
    assert_eq!(ok("{{ . | len }}"), sample().len().to_string());
    assert!(err("{{ range . }}{{ else if true }}{{ end }}").contains("unexpected <if> in input"));
    assert!(
        err("{{ if true }}{{ define \"x\" }}{{ end }}{{ end }}").contains("unexpected <define>")
    );
    assert!(err("{{ $x := 1 }}{{ $x.y }}").contains("can't evaluate field y in type int"));
    assert!(err("{{ \"x\" 1 }}").contains("can't give argument to non-function \"x\""));
}

#[test]
fn supported_functions_all_resolve() {
    for name in SUPPORTED_FUNCTIONS {
        assert!(lookup_function(name).is_some(), "{name}");
    }
    for name in ["env", "expandenv", "getHostByName", "call", "nope"] {
        assert!(lookup_function(name).is_none(), "{name}");
        assert!(!SUPPORTED_FUNCTIONS.contains(&name));
    }
}

#[test]
fn float_formatting_matches_go() {
    let cases = [
        (1.0, "1"),
        (0.5, "0.5"),
        (100000.0, "100000"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5e-10, "-2.5e-10"),
        (1e21, "1e+21"),
    ];
    for (value, expected) in cases {
        assert_eq!(format_float_shortest(value), expected);
    }
}

#[test]
fn from_json_is_charged_for_its_whole_tree() {
    // 3 bytes of JSON per empty list, all under one element: a shallow charge would count
    // one element per call, and 1 MB of input would keep about 20 MB per call.
    let lists = format!("[[{}[]]]", "[],".repeat(330_000));
    let items = data(&[("x", lists.as_bytes())]);
    let keep = |calls: usize| {
        format!(
            "{{{{ $a := list }}}}{{{{ range {calls} }}}}{{{{ $a = append $a (fromJson $.x) }}}}{{{{ end }}}}{{{{ len $a }}}}"
        )
    };
    let message = render("key", &keep(30), &items).unwrap_err().to_string();
    assert!(
        message.contains("result would be larger than 4194304 bytes"),
        "{message}"
    );
    // A tree within one value's limit is read, and each call is charged all of it, so the
    // object's allocation budget (32 MiB) runs out after a few calls.
    let lists = format!("[[{}[]]]", "[],".repeat(30_000));
    let items = data(&[("x", lists.as_bytes())]);
    assert_eq!(
        String::from_utf8_lossy(&render("key", &keep(1), &items).unwrap()),
        "1"
    );
    let message = render("key", &keep(30), &items).unwrap_err().to_string();
    assert!(message.contains("(limit per SealedSecret)"), "{message}");
}
#[test]
fn from_json_rounds_numbers_as_go_does() {
    // Go's strconv.ParseFloat rounds correctly; serde_json's default parser (which fromJson
    // used before) read this one ULP low, as 1.2345678901234566e+25.
    let items = data(&[("x", b"[12345678901234567890901234, 0.1, 1e23]")]);
    let out = render("key", "{{ toJson (fromJson .x) }}", &items).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out),
        "[1.2345678901234568e+25,0.1,1e+23]"
    );
}

#[test]
fn new_strings_inside_a_result_are_charged() {
    // Each call makes a new 2 MB string inside a list (or a map): a charge of the list's slots
    // alone let 200 calls keep 400 MB.
    for make in [
        "splitList \",\" $s",
        "split \",\" $s",
        "keys (dict $s 1)",
        "list (print $s)",
    ] {
        let template = format!(
            "{{{{ $s := repeat 2000000 \"a\" }}}}{{{{ $a := list }}}}{{{{ range 200 }}}}{{{{ $a = append $a ({make}) }}}}{{{{ end }}}}{{{{ len $a }}}}"
        );
        let message = err(&template);
        assert!(
            message.contains("(limit per SealedSecret)"),
            "{make}: {message}"
        );
    }
    // Arranging existing values charges their slots only: 200 lists of the same string fit.
    assert_eq!(
        ok(
            "{{ $s := repeat 2000000 \"a\" }}{{ $a := list }}{{ range 200 }}{{ $a = append $a (list $s) }}{{ end }}{{ len $a }}"
        ),
        "200"
    );
}
