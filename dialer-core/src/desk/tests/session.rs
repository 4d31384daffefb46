//! Pages going and coming back, and login sessions ending.

use super::*;

#[test]
fn a_call_that_ended_while_the_page_was_away_becomes_a_wrap_up() {
    let mut desk = in_call(5, false);
    let out = feed(
        &mut desk,
        Input::Reconnected {
            attempt: Some(AttemptStatus {
                answered: true,
                ended: true,
            }),
        },
    );
    assert_eq!(
        out,
        vec![
            floor(SPRING, AgentState::WrapUp),
            state("wrap_up", Some(SPRING), Some("reconnected")),
            Action::StartWrapUp {
                call: 5,
                campaign: Some(SPRING),
                cause: None
            }
        ]
    );
    let mut desk = in_call(5, false);
    feed(&mut desk, Input::Reconnected { attempt: None });
    assert_eq!(
        desk.phase().name(),
        "wrap_up",
        "a call the store cannot find is over"
    );
}

#[test]
fn a_call_still_up_is_shown_again_on_reconnecting() {
    let mut desk = in_call(5, true);
    feed(&mut desk, Input::Held { call: 5, on: true });
    let out = feed(
        &mut desk,
        Input::Reconnected {
            attempt: Some(AttemptStatus {
                answered: true,
                ended: false,
            }),
        },
    );
    assert_eq!(
        out,
        vec![
            state("in_call", Some(SPRING), Some("reconnected")),
            Action::Send(Reply::Call { call: 5 }),
            Action::Send(Reply::Controls {
                call: 5,
                controls: Controls {
                    held: true,
                    recording: Recording::On
                }
            })
        ]
    );
}

#[test]
fn a_wrap_up_due_is_due_again_on_reconnecting() {
    let mut desk = wrapping_up(30);
    let out = feed(&mut desk, Input::Reconnected { attempt: None });
    assert_eq!(
        out,
        vec![
            state("wrap_up", Some(SPRING), Some("reconnected")),
            Action::StartWrapUp {
                call: 5,
                campaign: Some(SPRING),
                cause: None
            }
        ]
    );
    // The page came back 20 seconds after the call ended.
    desk.handle_input(
        Input::WrapUpLimit {
            call: 5,
            cause: None,
            ended_at: Some(t0()),
            limit_secs: Some(30),
        },
        at(20),
    );
    assert_eq!(
        drain(&mut desk),
        vec![Action::Send(Reply::CallEnded {
            call: 5,
            cause: None,
            wrap_up_secs: Some(10)
        })]
    );
}

#[test]
fn a_manual_dial_is_followed_up_on_reconnecting() {
    let ringing = AttemptStatus {
        answered: false,
        ended: false,
    };
    let mut desk = dialling(Some(9));
    let out = feed(
        &mut desk,
        Input::Reconnected {
            attempt: Some(ringing),
        },
    );
    assert_eq!(
        out,
        vec![
            state("dialling", Some(SPRING), Some("reconnected")),
            Action::Send(Reply::Dialling {
                call: 9,
                number: "+442079460000".into()
            })
        ]
    );

    let mut desk = dialling(Some(9));
    feed(
        &mut desk,
        Input::Reconnected {
            attempt: Some(AttemptStatus {
                answered: true,
                ended: false,
            }),
        },
    );
    assert_eq!(
        desk.phase(),
        &Phase::InCall {
            call: 9,
            controls: Controls::default()
        },
        "answered while the page was away"
    );

    for (call, attempt) in [
        (
            Some(9),
            Some(AttemptStatus {
                answered: true,
                ended: true,
            }),
        ),
        (Some(9), None),
        (None, Some(ringing)),
    ] {
        let mut desk = dialling(call);
        let out = feed(&mut desk, Input::Reconnected { attempt });
        assert_eq!(
            out,
            vec![state("paused", Some(SPRING), Some("reconnected"))]
        );
        assert_eq!(desk.phase(), &Phase::Paused { code: None });
    }
}

#[test]
fn a_waiting_agent_is_paused_when_the_page_goes() {
    let mut desk = ready_in(SPRING, false);
    assert_eq!(
        feed(&mut desk, Input::Disconnected),
        vec![
            floor(SPRING, AgentState::Paused),
            publish(AgentState::Paused, Some("disconnected"))
        ]
    );
    assert_eq!(desk.phase(), &Phase::Paused { code: None });
    let out = feed(&mut desk, Input::Reconnected { attempt: None });
    assert_eq!(
        out,
        vec![state("paused", Some(SPRING), Some("reconnected"))]
    );
}

#[test]
fn a_waiting_agent_whose_audio_goes_stops_taking_calls_but_a_call_carries_on() {
    let mut desk = ready_in(SPRING, false);
    assert_eq!(
        feed(&mut desk, Input::AudioLost),
        vec![
            floor(SPRING, AgentState::Paused),
            publish(AgentState::Paused, Some("no_audio")),
            state("paused", Some(SPRING), Some("no_audio")),
        ]
    );
    assert_eq!(desk.phase(), &Phase::Paused { code: None });
    let mut desk = in_call(5, false);
    assert!(feed(&mut desk, Input::AudioLost).is_empty());
    assert_eq!(desk.live_call(), Some(&5));
}

#[test]
fn a_waiting_agent_whose_desk_phone_rings_out_is_paused_as_not_answering() {
    let mut desk = ready_in(SPRING, false);
    assert_eq!(
        feed(&mut desk, Input::NotAnswering),
        vec![
            floor(SPRING, AgentState::Paused),
            publish(AgentState::Paused, Some("not_answering")),
            state("paused", Some(SPRING), Some("not_answering")),
        ]
    );
    assert_eq!(desk.phase(), &Phase::Paused { code: None });
    // Already paused, or talking: nothing changes.
    assert!(feed(&mut desk, Input::NotAnswering).is_empty());
    let mut desk = in_call(5, false);
    assert!(feed(&mut desk, Input::NotAnswering).is_empty());
    assert_eq!(desk.live_call(), Some(&5));
}

#[test]
fn a_call_or_wrap_up_outlasts_the_page() {
    let mut desk = in_call(5, false);
    assert_eq!(
        feed(&mut desk, Input::Disconnected),
        vec![publish(AgentState::Paused, Some("disconnected"))]
    );
    assert_eq!(desk.live_call(), Some(&5));
    let mut desk = wrapping_up(30);
    feed(&mut desk, Input::Disconnected);
    assert_eq!(desk.poll_timeout(), Some(at(30)));
}

#[test]
fn signing_out_while_waiting_leaves_the_campaign() {
    let mut previewing = ready_in(SPRING, true);
    feed(
        &mut previewing,
        Input::PreviewOffered {
            lead: Some(LeadId(1)),
            contact: None,
        },
    );
    let mut paused = ready_in(SPRING, false);
    feed(
        &mut paused,
        Input::Pause {
            code: "lunch".into(),
            known: true,
        },
    );
    for mut desk in [ready_in(SPRING, false), previewing, paused] {
        assert_eq!(
            feed(&mut desk, Input::SignedOut),
            vec![floor(SPRING, AgentState::LoggedOut), Action::DropAudio]
        );
        assert_eq!(desk.phase(), &Phase::SignedOut);
    }
    let mut desk = Desk::new();
    assert_eq!(
        feed(&mut desk, Input::SignedOut),
        vec![Action::DropAudio],
        "no campaign to leave"
    );
}

#[test]
fn signing_out_while_dialling_hangs_up_the_dial() {
    let mut desk = dialling(Some(9));
    assert_eq!(
        feed(&mut desk, Input::SignedOut),
        vec![
            floor(SPRING, AgentState::LoggedOut),
            Action::DropCall { call: 9 },
            Action::DropAudio
        ]
    );
    assert_eq!(desk.phase(), &Phase::SignedOut);
    let mut desk = dialling(None);
    assert_eq!(
        feed(&mut desk, Input::SignedOut),
        vec![floor(SPRING, AgentState::LoggedOut), Action::DropAudio]
    );
    assert_eq!(desk.phase(), &Phase::SignedOut);
}

#[test]
fn signing_out_in_a_call_hangs_it_up_and_the_next_login_wraps_it_up() {
    let mut desk = in_call(5, false);
    assert_eq!(
        feed(&mut desk, Input::SignedOut),
        vec![
            floor(SPRING, AgentState::LoggedOut),
            Action::DropCall { call: 5 },
            Action::DropAudio
        ]
    );
    let out = feed(
        &mut desk,
        Input::Reconnected {
            attempt: Some(AttemptStatus {
                answered: true,
                ended: true,
            }),
        },
    );
    assert_eq!(out[1], state("wrap_up", Some(SPRING), Some("reconnected")));
}

#[test]
fn signing_out_in_a_wrap_up_keeps_it_due() {
    let mut desk = wrapping_up(30);
    assert_eq!(
        feed(&mut desk, Input::SignedOut),
        vec![floor(SPRING, AgentState::LoggedOut), Action::DropAudio]
    );
    assert_eq!(desk.phase().name(), "wrap_up");
    assert_eq!(desk.poll_timeout(), Some(at(30)));
}

#[test]
fn a_signed_out_desk_refuses_the_page_until_the_next_login() {
    let mut desk = ready_in(SPRING, false);
    feed(&mut desk, Input::SignedOut);
    assert_eq!(
        feed(&mut desk, Input::Ready { campaign: SPRING }),
        refused(Refusal::SignedOut)
    );
    assert_eq!(desk.phase(), &Phase::SignedOut);
    let out = feed(&mut desk, Input::Reconnected { attempt: None });
    assert_eq!(
        out,
        vec![state("paused", Some(SPRING), Some("reconnected"))]
    );
    assert_eq!(
        feed(&mut desk, Input::Ready { campaign: SPRING }),
        vec![Action::Join {
            campaign: SPRING,
            leave: None
        }]
    );
}
