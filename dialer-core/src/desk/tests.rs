use super::*;
use crate::pacer::AgentState;
use chrono::TimeZone;
use std::time::Duration;

const SPRING: CampaignId = CampaignId(7);
const AUTUMN: CampaignId = CampaignId(8);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

fn at(secs: u64) -> DateTime<Utc> {
    t0() + Duration::from_secs(secs)
}

fn drain(desk: &mut Desk<u32>) -> Vec<Action<u32>> {
    std::iter::from_fn(|| desk.poll_action()).collect()
}

fn feed(desk: &mut Desk<u32>, input: Input<u32>) -> Vec<Action<u32>> {
    desk.handle_input(input, t0());
    drain(desk)
}

/// Ends the agent's own call `call` with no cause given.
fn end_call(desk: &mut Desk<u32>, call: u32) -> Vec<Action<u32>> {
    feed(
        desk,
        Input::CallEnded {
            call,
            mine: true,
            cause: None,
        },
    )
}

/// Answers the desk's request for the wrap-up limit of `call`.
fn wrap_limit(
    desk: &mut Desk<u32>,
    call: u32,
    ended_at: Option<DateTime<Utc>>,
    limit_secs: Option<u32>,
) -> Vec<Action<u32>> {
    feed(
        desk,
        Input::WrapUpLimit {
            call,
            cause: None,
            ended_at,
            limit_secs,
        },
    )
}

fn state(name: &'static str, campaign: Option<CampaignId>, reason: Option<&str>) -> Action<u32> {
    Action::Send(Reply::State {
        state: name,
        campaign,
        reason: reason.map(str::to_owned),
    })
}

fn refused(refusal: Refusal) -> Vec<Action<u32>> {
    vec![Action::Send(Reply::Refused(refusal))]
}

fn publish(state: AgentState, reason: Option<&str>) -> Action<u32> {
    Action::Publish {
        state,
        reason: reason.map(str::to_owned),
    }
}

fn floor(campaign: CampaignId, state: AgentState) -> Action<u32> {
    Action::TellFloor { campaign, state }
}

fn ready_in(campaign: CampaignId, preview: bool) -> Desk<u32> {
    let mut desk = Desk::new();
    feed(&mut desk, Input::Ready { campaign });
    feed(&mut desk, Input::Joined { campaign, preview });
    desk
}

fn in_call(call: u32, recorded: bool) -> Desk<u32> {
    let mut desk = ready_in(SPRING, false);
    feed(&mut desk, Input::CallConnected { call, recorded });
    desk
}

/// A desk whose call 5 ended at `t0`, under a wrap-up limit.
fn wrapping_up(limit_secs: u32) -> Desk<u32> {
    let mut desk = in_call(5, false);
    end_call(&mut desk, 5);
    wrap_limit(&mut desk, 5, Some(t0()), Some(limit_secs));
    desk
}

fn dialling(call: Option<u32>) -> Desk<u32> {
    let mut desk = ready_in(SPRING, false);
    feed(
        &mut desk,
        Input::ManualDial {
            number: "+44 20 7946 0000".into(),
            confirm: false,
        },
    );
    feed(
        &mut desk,
        Input::ManualDialPlaced {
            number: "+442079460000".into(),
        },
    );
    if let Some(call) = call {
        feed(&mut desk, Input::CallRinging { call });
    }
    desk
}

fn sale() -> Disposition {
    Disposition {
        name: "sale".into(),
        notes: Some("two boxes".into()),
        callback_at: None,
        callback_mine: false,
    }
}

mod calls;
mod property;
mod session;
mod wrap_up;

#[test]
fn a_new_desk_is_paused_in_no_campaign() {
    let mut desk: Desk<u32> = Desk::new();
    assert_eq!(desk.phase(), &Phase::Paused { code: None });
    assert_eq!(desk.phase().name(), "paused");
    assert_eq!(desk.campaign(), None);
    assert_eq!(desk.poll_timeout(), None);
    assert_eq!(drain(&mut desk), vec![]);
}

#[test]
fn ready_joins_the_campaign_and_the_desk_changes_only_once_joined() {
    let mut desk = Desk::new();
    let asked = feed(&mut desk, Input::Ready { campaign: SPRING });
    assert_eq!(
        asked,
        vec![Action::Join {
            campaign: SPRING,
            leave: None
        }]
    );
    assert_eq!(desk.phase(), &Phase::Paused { code: None });
    let joined = feed(
        &mut desk,
        Input::Joined {
            campaign: SPRING,
            preview: false,
        },
    );
    assert_eq!(
        joined,
        vec![
            publish(AgentState::Ready, None),
            state("ready", Some(SPRING), None)
        ]
    );
    assert_eq!(desk.phase(), &Phase::Ready);
    assert_eq!(desk.campaign(), Some(SPRING));
}

#[test]
fn ready_in_a_preview_campaign_asks_for_the_first_contact() {
    let mut desk = Desk::new();
    feed(&mut desk, Input::Ready { campaign: SPRING });
    let joined = feed(
        &mut desk,
        Input::Joined {
            campaign: SPRING,
            preview: true,
        },
    );
    assert_eq!(
        joined,
        vec![
            publish(AgentState::Ready, None),
            Action::PreviewNext { campaign: SPRING },
            state("ready", Some(SPRING), None)
        ]
    );
}

#[test]
fn ready_in_another_campaign_leaves_the_last_one() {
    let mut desk = ready_in(SPRING, false);
    assert_eq!(
        feed(&mut desk, Input::Ready { campaign: AUTUMN }),
        vec![Action::Join {
            campaign: AUTUMN,
            leave: Some(SPRING)
        }]
    );
    assert_eq!(
        feed(&mut desk, Input::Ready { campaign: SPRING }),
        vec![Action::Join {
            campaign: SPRING,
            leave: None
        }],
        "going ready again in the same campaign leaves nothing"
    );
}

#[test]
fn ready_is_refused_in_a_call_and_while_dialling() {
    let mut desk = in_call(5, false);
    assert_eq!(
        feed(&mut desk, Input::Ready { campaign: SPRING }),
        refused(Refusal::CallInProgress)
    );
    let mut desk = dialling(None);
    assert_eq!(
        feed(&mut desk, Input::Ready { campaign: SPRING }),
        refused(Refusal::CallInProgress)
    );
    assert_eq!(desk.phase().name(), "dialling");
}

#[test]
fn a_join_answered_after_a_call_arrived_changes_nothing() {
    let mut desk = ready_in(SPRING, false);
    feed(&mut desk, Input::Ready { campaign: AUTUMN });
    feed(
        &mut desk,
        Input::CallConnected {
            call: 5,
            recorded: false,
        },
    );
    let late = feed(
        &mut desk,
        Input::Joined {
            campaign: AUTUMN,
            preview: false,
        },
    );
    assert_eq!(late, vec![]);
    assert_eq!(desk.campaign(), Some(SPRING));
    assert_eq!(desk.phase().name(), "in_call");
}

#[test]
fn pause_with_a_known_code_pauses_and_tells_the_floor() {
    let mut desk = ready_in(SPRING, false);
    let out = feed(
        &mut desk,
        Input::Pause {
            code: "lunch".into(),
            known: true,
        },
    );
    assert_eq!(
        out,
        vec![
            floor(SPRING, AgentState::Paused),
            publish(AgentState::Paused, Some("lunch")),
            state("paused", Some(SPRING), Some("lunch"))
        ]
    );
    assert_eq!(
        desk.phase(),
        &Phase::Paused {
            code: Some("lunch".into())
        }
    );
}

#[test]
fn pause_before_any_campaign_tells_no_floor() {
    let mut desk = Desk::new();
    let out = feed(
        &mut desk,
        Input::Pause {
            code: "break".into(),
            known: true,
        },
    );
    assert_eq!(
        out,
        vec![
            publish(AgentState::Paused, Some("break")),
            state("paused", None, Some("break"))
        ]
    );
}

#[test]
fn an_unknown_pause_code_is_refused_and_quoted_short() {
    let mut desk = ready_in(SPRING, false);
    let long = "x".repeat(100);
    let out = feed(
        &mut desk,
        Input::Pause {
            code: long,
            known: false,
        },
    );
    let [Action::Send(Reply::Refused(refusal))] = out.as_slice() else {
        panic!("expected a refusal, got {out:?}");
    };
    assert_eq!(
        refusal.to_string(),
        format!(
            "\"{}\" is not one of this account's pause codes",
            "x".repeat(32)
        )
    );
    assert_eq!(desk.phase(), &Phase::Ready);
}

#[test]
fn pause_during_a_call_or_wrap_up_lets_it_carry_on() {
    let mut desk = in_call(5, false);
    let out = feed(
        &mut desk,
        Input::Pause {
            code: "lunch".into(),
            known: true,
        },
    );
    assert_eq!(out[2], state("in_call", Some(SPRING), Some("lunch")));
    assert_eq!(desk.live_call(), Some(&5));

    let mut desk = wrapping_up(30);
    let out = feed(
        &mut desk,
        Input::Pause {
            code: "lunch".into(),
            known: true,
        },
    );
    assert_eq!(out[2], state("wrap_up", Some(SPRING), Some("lunch")));
    assert_eq!(desk.poll_timeout(), Some(at(30)), "the wrap-up stays due");
}

#[test]
fn pause_is_refused_while_dialling() {
    let mut desk = dialling(Some(9));
    assert_eq!(
        feed(
            &mut desk,
            Input::Pause {
                code: "lunch".into(),
                known: true
            }
        ),
        refused(Refusal::Dialling)
    );
}

#[test]
fn a_preview_offer_is_shown_and_can_be_called() {
    let mut desk = ready_in(SPRING, true);
    let offered = feed(
        &mut desk,
        Input::PreviewOffered {
            lead: Some(LeadId(11)),
            contact: Some(ContactId(42)),
        },
    );
    assert_eq!(
        offered,
        vec![Action::Send(Reply::Preview {
            lead: Some(LeadId(11)),
            contact: Some(ContactId(42))
        })]
    );
    assert_eq!(
        desk.phase(),
        &Phase::Previewing {
            lead: Some(LeadId(11))
        }
    );
    assert_eq!(desk.phase().name(), "ready");
    assert_eq!(
        feed(&mut desk, Input::PreviewCall),
        vec![Action::PreviewCall { campaign: SPRING }]
    );
    feed(
        &mut desk,
        Input::CallConnected {
            call: 5,
            recorded: false,
        },
    );
    assert_eq!(desk.live_call(), Some(&5));
}

#[test]
fn skipping_a_preview_asks_for_the_next() {
    let mut desk = ready_in(SPRING, true);
    feed(
        &mut desk,
        Input::PreviewOffered {
            lead: Some(LeadId(11)),
            contact: Some(ContactId(42)),
        },
    );
    assert_eq!(
        feed(&mut desk, Input::PreviewSkip),
        vec![Action::PreviewSkip { campaign: SPRING }]
    );
    assert_eq!(desk.phase(), &Phase::Ready);
}

#[test]
fn preview_choices_need_a_ready_desk_in_a_campaign() {
    let mut desk = Desk::new();
    assert_eq!(
        feed(&mut desk, Input::PreviewCall),
        refused(Refusal::NotPreviewing)
    );
    let mut desk = in_call(5, false);
    assert_eq!(
        feed(&mut desk, Input::PreviewSkip),
        refused(Refusal::NotPreviewing)
    );
}

#[test]
fn a_preview_offer_during_a_call_is_shown_but_the_call_stays() {
    let mut desk = in_call(5, false);
    let out = feed(
        &mut desk,
        Input::PreviewOffered {
            lead: None,
            contact: None,
        },
    );
    assert_eq!(
        out,
        vec![Action::Send(Reply::Preview {
            lead: None,
            contact: None
        })]
    );
    assert_eq!(desk.phase().name(), "in_call");
}

#[test]
fn a_preview_call_that_fails_shows_the_next_contact() {
    let mut desk = ready_in(SPRING, true);
    feed(
        &mut desk,
        Input::PreviewOffered {
            lead: Some(LeadId(11)),
            contact: Some(ContactId(42)),
        },
    );
    feed(&mut desk, Input::PreviewCall);
    let out = feed(
        &mut desk,
        Input::CallEnded {
            call: 5,
            mine: true,
            cause: Some("Busy".into()),
        },
    );
    assert_eq!(
        out,
        vec![
            Action::Send(Reply::NotConnected {
                call: Some(5),
                cause: Some("Busy".into())
            }),
            Action::PreviewNext { campaign: SPRING }
        ]
    );
    assert_eq!(desk.phase(), &Phase::Ready);
}
