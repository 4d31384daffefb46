use chrono::Utc;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::fields::{FieldKind, FieldValues, NewField};
use crate::model::{Campaign, CampaignId, CampaignStatus, ContactFields};

/// The values a hostile CSV import can put in a contact's fields.
const HOSTILE: &[&str] = &[
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\"><svg onload=alert(1)>",
    "{{first_name}}",
    "{agent} {field.plan}",
    "**bold** *italic*",
    "- not a bullet",
    "javascript:alert(document.cookie)",
    "[click](javascript:alert(1))",
    "=cmd|' /C calc'!A0",
    "+SUM(1+1)*cmd|' /C calc'!A0",
    "@SUM(1)",
    "&lt;b&gt;&amp;",
    "\\*\\{",
];

fn script(body: &str) -> Script {
    Script {
        sections: vec![Section {
            title: "Opening".into(),
            body: body.into(),
        }],
    }
}

fn field(key: &str, on_card: bool) -> FieldDef {
    let mut f = NewField {
        key: key.into(),
        kind: Some(FieldKind::Text),
        ..NewField::default()
    }
    .check(|_| false)
    .expect("valid field");
    f.on_card = on_card;
    f
}

fn campaign() -> Campaign {
    Campaign {
        id: CampaignId(1),
        account_id: crate::model::AccountId(1),
        name: "Renewals".into(),
        caller_id: "+441632960000".into(),
        status: CampaignStatus::Running,
        list_ids: Vec::new(),
        created_at: Utc::now(),
    }
}

fn merge(first_name: &str, plan: &str) -> Merge {
    let contact = ContactFields {
        first_name: first_name.into(),
        last_name: "Doe".into(),
        phone_e164: "+447700900123".into(),
        ..ContactFields::default()
    };
    let mut values = FieldValues::new();
    values.insert("plan".into(), json!(plan));
    Merge::new()
        .contact(&contact, &values)
        .campaign(&campaign())
        .agent("alice")
}

/// The script with every value blanked: what the template alone decides.
fn shape(r: &Rendered) -> Rendered {
    let mut r = r.clone();
    for s in &mut r.sections {
        for b in &mut s.blocks {
            let (Block::Paragraph { lines } | Block::List { items: lines }) = b;
            for span in lines.iter_mut().flatten() {
                if span.field.is_some() {
                    span.text.clear();
                    span.missing = false;
                }
            }
        }
    }
    r
}

fn field_texts<'a>(r: &'a Rendered, name: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    for s in &r.sections {
        for b in &s.blocks {
            let (Block::Paragraph { lines } | Block::List { items: lines }) = b;
            for span in lines.iter().flatten() {
                if span.field.as_deref() == Some(name) {
                    out.push(span.text.as_str());
                }
            }
        }
    }
    out
}

const TEMPLATE: &str = "Hello **{first_name}**, this is *{agent}* of {campaign}.\n\
                        We call from {caller_id}.\n\n- Plan: {field.plan}\n- Ask about *renewal*";

#[test]
fn renders_sections_formatting_and_merge_fields() {
    let r = script(TEMPLATE).render(&merge("Ann", "Gold"));
    assert_eq!(
        r.plain_text(),
        "Opening\nHello Ann, this is alice of Renewals.\nWe call from +441632960000.\n\
         - Plan: Gold\n- Ask about renewal\n"
    );
    let Block::Paragraph { lines } = &r.sections[0].blocks[0] else {
        panic!("a paragraph first: {r:?}");
    };
    assert_eq!(
        lines[0][1],
        Span {
            text: "Ann".into(),
            bold: true,
            field: Some("first_name".into()),
            ..Span::default()
        }
    );
    assert!(lines[0][3].italic && lines[0][3].text == "alice");
    assert!(matches!(&r.sections[0].blocks[1], Block::List { items } if items.len() == 2));
}

#[test]
fn a_marker_without_a_partner_is_text() {
    let r = script("5 * 3 = 15 and **half").render(&Merge::new());
    assert_eq!(r.plain_text(), "Opening\n5 * 3 = 15 and **half\n");
    let Block::Paragraph { lines } = &r.sections[0].blocks[0] else {
        panic!("a paragraph");
    };
    assert!(lines[0].iter().all(|s| !s.bold && !s.italic), "{lines:?}");
    let r = script("***both*** **a** **b").render(&Merge::new());
    let Block::Paragraph { lines } = &r.sections[0].blocks[0] else {
        panic!("a paragraph");
    };
    let styles: Vec<(&str, bool, bool)> = lines[0]
        .iter()
        .map(|s| (s.text.as_str(), s.bold, s.italic))
        .collect();
    assert_eq!(
        styles,
        [
            ("both", true, true),
            (" ", false, false),
            ("a", true, false),
            (" **b", false, false)
        ]
    );
}

#[test]
fn missing_values_are_marked_not_invented() {
    let r = script("Hi {first_name} {field.gone}").render(&Merge::new().agent("bob"));
    let Block::Paragraph { lines } = &r.sections[0].blocks[0] else {
        panic!("a paragraph");
    };
    let missing: Vec<_> = lines[0]
        .iter()
        .filter(|s| s.missing)
        .map(|s| s.field.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(missing, ["first_name", "field.gone"]);
}

#[test]
fn hostile_contact_values_stay_text_in_the_same_shape() {
    let benign = script(TEMPLATE).render(&merge("Ann", "Gold"));
    for value in HOSTILE {
        let r = script(TEMPLATE).render(&merge(value, value));
        assert_eq!(
            shape(&r),
            shape(&benign),
            "{value:?} changed the script's shape"
        );
        assert_eq!(field_texts(&r, "first_name"), [*value], "{value:?}");
        assert_eq!(field_texts(&r, "field.plan"), [*value], "{value:?}");
    }
}

#[test]
fn control_characters_invisible_marks_and_huge_values_are_tamed() {
    let r = script("{first_name}|{field.plan}").render(&merge(
        "Ann\r\nEvil: line\u{0}\u{7}\tend",
        "\u{202E}dlroW\u{200B} olleH",
    ));
    assert_eq!(field_texts(&r, "first_name"), ["Ann  Evil: line   end"]);
    assert_eq!(field_texts(&r, "field.plan"), ["dlroW olleH"]);
    let huge = "A".repeat(100_000);
    let r = script("{first_name}|{field.plan}").render(&merge(&huge, " \t "));
    let text = field_texts(&r, "first_name")[0];
    assert_eq!(text.chars().count(), MAX_VALUE + 1);
    assert!(text.ends_with('…'));
    assert_eq!(
        field_texts(&r, "field.plan"),
        [""],
        "a blank value is missing"
    );
    assert!(r.plain_text().ends_with("…|\n"));
}

#[test]
fn the_rendered_tree_serialises_as_text_leaves_only() {
    let r = script(TEMPLATE).render(&merge("<script>alert(1)</script>", "x"));
    let json = serde_json::to_value(&r).expect("serialises");
    let span = &json["sections"][0]["blocks"][0]["lines"][0][1];
    assert_eq!(
        span,
        &json!({ "text": "<script>alert(1)</script>", "bold": true, "field": "first_name" })
    );
    assert_eq!(json["sections"][0]["blocks"][1]["kind"], "list");
}

#[test]
fn unknown_fields_are_named_at_save_time() {
    let fields = [field("plan", true), field("secret", false)];
    let s = script("Hi {first_name} {frist_name} {field.plan} {field.nope} {frist_name}");
    let Err(StoreError::Invalid(m)) = s.check(&fields) else {
        panic!("unknown fields refused");
    };
    assert!(
        m.contains("unknown merge fields: {frist_name}, {field.nope};"),
        "{m}"
    );
    let Err(StoreError::Invalid(m)) = script("{field.secret}").check(&fields) else {
        panic!("a field off the card refused");
    };
    assert!(
        m.contains("not shown on the agent's card: {field.secret}"),
        "{m}"
    );
    script(TEMPLATE)
        .check(&fields)
        .expect("a good script passes");
    Script::default()
        .check(&[])
        .expect("an empty script clears it");
}

#[test]
fn bad_scripts_are_refused_with_where_and_why() {
    let refused = |s: Script| match s.check(&[]) {
        Err(StoreError::Invalid(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(refused(script("a\nHello {first_name")).contains("section 1 (Opening), line 2"));
    assert!(refused(script("{First}")).contains("{First} is not a merge field"));
    assert!(refused(script(&"x".repeat(MAX_BODY + 1))).contains("longer than"));
    assert!(refused(script("a\u{0}b")).contains("control"));
    let untitled = Script {
        sections: vec![Section::default()],
    };
    assert!(refused(untitled).contains("title"));
    let many = Script {
        sections: vec![
            Section {
                title: "t".into(),
                body: String::new()
            };
            MAX_SECTIONS + 1
        ],
    };
    assert!(refused(many).contains("at most"));
    let crowded = script(&"{agent}".repeat(MAX_MERGES + 1));
    assert!(refused(crowded).contains("at most 300 merge fields"));
}

proptest! {
    /// Whatever a contact's fields hold, the script keeps the shape its
    /// template gives it, and the value is one text leaf: the value cleaned
    /// of control characters and cut to length, never read as syntax.
    #[test]
    fn any_contact_value_is_a_text_leaf(value in any::<String>(), plan in "\\PC{0,300}") {
        let benign = script(TEMPLATE).render(&merge("Ann", "Gold"));
        let r = script(TEMPLATE).render(&merge(&value, &plan));
        prop_assert_eq!(shape(&r), shape(&benign));
        let expected = merge::clean(&value, MAX_VALUE);
        prop_assert_eq!(field_texts(&r, "first_name"), vec![expected.as_str()]);
        prop_assert!(!expected.chars().any(char::is_control));
        prop_assert!(expected.chars().count() <= MAX_VALUE + 1);
        let plan_text = merge::clean(&plan, MAX_VALUE);
        prop_assert_eq!(field_texts(&r, "field.plan"), vec![plan_text.as_str()]);
    }

    /// Any body either reads or is refused with a message; rendering it
    /// never panics.
    #[test]
    fn any_body_checks_or_is_refused(body in "[-*{}\\\\a-z_. \n]{0,80}") {
        let s = script(&body);
        let _ = s.check(&[]);
        let _ = s.render(&merge("Ann", "Gold"));
    }
}
