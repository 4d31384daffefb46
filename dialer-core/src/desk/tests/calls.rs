//! Dialling by hand, hanging up, and the controls of a call in progress.

use super::*;

#[test]
fn a_manual_dial_pauses_a_ready_agent_and_rings_out() {
    let mut desk = ready_in(SPRING, false);
    let asked = feed(
        &mut desk,
        Input::ManualDial {
            number: "020 7946 0000".into(),
            confirm: true,
        },
    );
    assert_eq!(
        asked,
        vec![Action::PlaceManualDial {
            campaign: SPRING,
            number: "020 7946 0000".into(),
            confirm: true,
            pause_first: true
        }]
    );
    assert_eq!(desk.phase(), &Phase::Ready, "nothing changes until placed");
    let placed = feed(
        &mut desk,
        Input::ManualDialPlaced {
            number: "+442079460000".into(),
        },
    );
    assert_eq!(
        placed,
        vec![
            publish(AgentState::Paused, Some("manual")),
            state("dialling", Some(SPRING), Some("manual"))
        ]
    );
    let ringing = feed(&mut desk, Input::CallRinging { call: 9 });
    assert_eq!(
        ringing,
        vec![Action::Send(Reply::Dialling {
            call: 9,
            number: "+442079460000".into()
        })]
    );
    assert_eq!(
        feed(&mut desk, Input::CallRinging { call: 9 }),
        vec![],
        "the ringing report after the first names nothing new"
    );
    assert_eq!(desk.live_call(), Some(&9));
}

#[test]
fn a_paused_agent_dials_without_pausing_again() {
    let mut desk = ready_in(SPRING, false);
    feed(
        &mut desk,
        Input::Pause {
            code: "admin".into(),
            known: true,
        },
    );
    let asked = feed(
        &mut desk,
        Input::ManualDial {
            number: "+442079460000".into(),
            confirm: false,
        },
    );
    assert!(
        matches!(
            asked.as_slice(),
            [Action::PlaceManualDial {
                pause_first: false,
                ..
            }]
        ),
        "{asked:?}"
    );
}

#[test]
fn a_manual_dial_needs_a_campaign_and_no_call() {
    let mut desk = Desk::new();
    assert_eq!(
        feed(
            &mut desk,
            Input::ManualDial {
                number: "+442079460000".into(),
                confirm: false
            }
        ),
        refused(Refusal::NoCampaign)
    );
    for mut desk in [in_call(5, false), wrapping_up(30), dialling(Some(9))] {
        assert_eq!(
            feed(
                &mut desk,
                Input::ManualDial {
                    number: "+442079460000".into(),
                    confirm: false
                }
            ),
            refused(Refusal::CallInProgress)
        );
    }
}

#[test]
fn a_manual_dial_answered_connects_the_agent() {
    let mut desk = dialling(Some(9));
    let out = feed(
        &mut desk,
        Input::CallConnected {
            call: 9,
            recorded: true,
        },
    );
    let controls = Controls {
        held: false,
        recording: Recording::On,
    };
    assert_eq!(
        out,
        vec![
            publish(AgentState::InCall, None),
            state("in_call", Some(SPRING), None),
            Action::Send(Reply::Call { call: 9 }),
            Action::Send(Reply::Controls { call: 9, controls })
        ]
    );
    assert_eq!(desk.phase(), &Phase::InCall { call: 9, controls });
}

#[test]
fn a_manual_dial_unanswered_leaves_the_agent_paused() {
    let mut desk = dialling(Some(9));
    let out = feed(
        &mut desk,
        Input::CallEnded {
            call: 9,
            mine: true,
            cause: Some("NoAnswer".into()),
        },
    );
    assert_eq!(
        out,
        vec![
            Action::Send(Reply::NotConnected {
                call: Some(9),
                cause: Some("NoAnswer".into())
            }),
            publish(AgentState::Paused, Some("manual")),
            state("paused", Some(SPRING), Some("manual"))
        ]
    );
    assert_eq!(desk.phase(), &Phase::Paused { code: None });
}

#[test]
fn a_manual_dial_refused_by_the_dialler_leaves_the_agent_paused() {
    let mut desk = dialling(None);
    let out = feed(&mut desk, Input::DialRefused);
    assert_eq!(
        out[0],
        Action::Send(Reply::NotConnected {
            call: None,
            cause: Some("refused".into())
        })
    );
    assert_eq!(desk.phase(), &Phase::Paused { code: None });
}

#[test]
fn another_call_ending_does_not_end_the_manual_dial() {
    let mut desk = dialling(Some(9));
    assert_eq!(
        feed(
            &mut desk,
            Input::CallEnded {
                call: 10,
                mine: true,
                cause: None
            }
        ),
        vec![]
    );
    assert_eq!(desk.live_call(), Some(&9));
}

#[test]
fn hang_up_acts_on_the_call_in_progress_or_ringing_out() {
    let mut desk = in_call(5, false);
    assert_eq!(
        feed(&mut desk, Input::HangUp),
        vec![Action::HangUp { call: 5 }]
    );
    let mut desk = dialling(Some(9));
    assert_eq!(
        feed(&mut desk, Input::HangUp),
        vec![Action::HangUp { call: 9 }]
    );
    for mut desk in [dialling(None), ready_in(SPRING, false), wrapping_up(30)] {
        assert_eq!(
            feed(&mut desk, Input::HangUp),
            refused(Refusal::NoCallToHangUp)
        );
    }
}

#[test]
fn hold_is_asked_of_the_gateway_then_shown() {
    let mut desk = in_call(5, true);
    assert_eq!(
        feed(&mut desk, Input::Hold { on: true }),
        vec![Action::Hold { call: 5, on: true }]
    );
    let held = Controls {
        held: true,
        recording: Recording::On,
    };
    assert_eq!(
        feed(&mut desk, Input::Held { call: 5, on: true }),
        vec![Action::Send(Reply::Controls {
            call: 5,
            controls: held
        })]
    );
    assert_eq!(
        desk.phase(),
        &Phase::InCall {
            call: 5,
            controls: held
        }
    );
    assert_eq!(
        feed(&mut desk, Input::Held { call: 6, on: false }),
        vec![],
        "a hold of another call changes nothing"
    );
}

#[test]
fn call_controls_need_a_call_in_progress() {
    for mut desk in [ready_in(SPRING, false), dialling(Some(9)), wrapping_up(30)] {
        for input in [
            Input::Hold { on: true },
            Input::Digits { digits: "1".into() },
            Input::Recording { paused: true },
        ] {
            assert_eq!(feed(&mut desk, input), refused(Refusal::NoCallInProgress));
        }
    }
}

#[test]
fn digits_are_checked_and_refused_on_hold() {
    let mut desk = in_call(5, false);
    for bad in ["", "12x", &"1".repeat(33)] {
        assert_eq!(
            feed(&mut desk, Input::Digits { digits: bad.into() }),
            refused(Refusal::BadDigits),
            "{bad:?}"
        );
    }
    assert_eq!(
        feed(
            &mut desk,
            Input::Digits {
                digits: "12*#ABCD".into()
            }
        ),
        vec![Action::SendDigits {
            call: 5,
            digits: "12*#ABCD".into()
        }]
    );
    feed(&mut desk, Input::Held { call: 5, on: true });
    assert_eq!(
        feed(&mut desk, Input::Digits { digits: "1".into() }),
        refused(Refusal::OnHold)
    );
}

#[test]
fn a_recorded_call_can_pause_and_resume_its_recording() {
    let mut desk = in_call(5, true);
    assert_eq!(
        feed(&mut desk, Input::Recording { paused: true }),
        vec![Action::SetRecording {
            call: 5,
            paused: true
        }]
    );
    let out = feed(
        &mut desk,
        Input::RecordingChanged {
            call: 5,
            paused: true,
        },
    );
    assert_eq!(
        out,
        vec![Action::Send(Reply::Controls {
            call: 5,
            controls: Controls {
                held: false,
                recording: Recording::Paused
            }
        })]
    );
    feed(
        &mut desk,
        Input::RecordingChanged {
            call: 5,
            paused: false,
        },
    );
    assert!(matches!(
        desk.phase(),
        Phase::InCall {
            controls: Controls {
                recording: Recording::On,
                ..
            },
            ..
        }
    ));
}

#[test]
fn an_unrecorded_call_has_no_recording_to_pause() {
    let mut desk = in_call(5, false);
    assert_eq!(
        feed(&mut desk, Input::Recording { paused: true }),
        refused(Refusal::NotRecorded)
    );
}

#[test]
fn a_new_audio_leg_takes_the_call_or_tells_the_floor() {
    let mut desk = in_call(5, false);
    assert_eq!(
        feed(&mut desk, Input::AudioConnected),
        vec![Action::Bridge { call: 5 }]
    );
    let mut desk = ready_in(SPRING, false);
    assert_eq!(
        feed(&mut desk, Input::AudioConnected),
        vec![floor(SPRING, AgentState::Ready)]
    );
    let mut desk = Desk::new();
    assert_eq!(feed(&mut desk, Input::AudioConnected), vec![]);
}

#[test]
fn leaving_a_voicemail_frees_the_agent_without_a_wrap_up() {
    let mut desk = in_call(5, true);
    let asked = feed(&mut desk, Input::LeaveMessage);
    assert_eq!(
        asked,
        vec![Action::LeaveMessage {
            campaign: SPRING,
            call: 5
        }]
    );
    assert!(
        matches!(desk.phase(), Phase::InCall { call: 5, .. }),
        "the agent stays on the call until the dialler takes it"
    );
    let left = feed(&mut desk, Input::MessageLeft { call: 5 });
    assert_eq!(
        left,
        vec![
            Action::Send(Reply::MessageLeft { call: 5 }),
            Action::Join {
                campaign: SPRING,
                leave: None
            }
        ]
    );
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
    // The dialler reports the call's end later under no agent.
    let ended = feed(
        &mut desk,
        Input::CallEnded {
            call: 5,
            mine: false,
            cause: None,
        },
    );
    assert_eq!(ended, vec![]);
    assert_eq!(desk.phase(), &Phase::Ready);
}

#[test]
fn a_voicemail_needs_a_call_in_progress_and_only_its_own_call_frees_the_agent() {
    let mut desk = ready_in(SPRING, false);
    assert_eq!(
        feed(&mut desk, Input::LeaveMessage),
        refused(Refusal::NoCallInProgress)
    );
    let mut desk = in_call(5, false);
    assert_eq!(feed(&mut desk, Input::MessageLeft { call: 6 }), vec![]);
    assert!(matches!(desk.phase(), Phase::InCall { call: 5, .. }));
}
