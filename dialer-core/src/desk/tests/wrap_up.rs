//! The end of a call, the wrap-up's deadline, and dispositions.

use super::*;

#[test]
fn the_end_of_the_call_starts_a_wrap_up_under_the_limit() {
    let mut desk = in_call(5, true);
    let ended = feed(
        &mut desk,
        Input::CallEnded {
            call: 5,
            mine: true,
            cause: Some("RemoteHangup".into()),
        },
    );
    assert_eq!(
        ended,
        vec![
            floor(SPRING, AgentState::WrapUp),
            publish(AgentState::WrapUp, None),
            state("wrap_up", Some(SPRING), None),
            Action::StartWrapUp {
                call: 5,
                campaign: Some(SPRING),
                cause: Some("RemoteHangup".into())
            }
        ]
    );
    assert_eq!(desk.poll_timeout(), None, "no deadline before the limit");
    // The limit is read a second after the call ended.
    desk.handle_input(
        Input::WrapUpLimit {
            call: 5,
            cause: Some("RemoteHangup".into()),
            ended_at: Some(t0()),
            limit_secs: Some(30),
        },
        at(1),
    );
    assert_eq!(
        drain(&mut desk),
        vec![Action::Send(Reply::CallEnded {
            call: 5,
            cause: Some("RemoteHangup".into()),
            wrap_up_secs: Some(29)
        })]
    );
    assert_eq!(desk.poll_timeout(), Some(at(30)));
}

#[test]
fn a_call_ended_for_someone_else_changes_nothing() {
    let mut desk = in_call(5, false);
    assert_eq!(
        feed(
            &mut desk,
            Input::CallEnded {
                call: 6,
                mine: false,
                cause: None
            }
        ),
        vec![]
    );
    let mut desk = ready_in(SPRING, false);
    assert_eq!(
        feed(
            &mut desk,
            Input::CallEnded {
                call: 6,
                mine: false,
                cause: None
            }
        ),
        vec![],
        "a ready agent's colleague's call is not theirs"
    );
}

#[test]
fn the_call_in_progress_ending_wraps_up_even_if_not_reported_as_mine() {
    let mut desk = in_call(5, false);
    feed(
        &mut desk,
        Input::CallEnded {
            call: 5,
            mine: false,
            cause: None,
        },
    );
    assert_eq!(desk.phase().name(), "wrap_up");
}

#[test]
fn without_a_limit_the_wrap_up_has_no_deadline() {
    for limit_secs in [Some(0), None] {
        let mut desk = in_call(5, false);
        end_call(&mut desk, 5);
        let out = feed(
            &mut desk,
            Input::WrapUpLimit {
                call: 5,
                cause: None,
                ended_at: Some(t0()),
                limit_secs,
            },
        );
        assert_eq!(
            out,
            vec![Action::Send(Reply::CallEnded {
                call: 5,
                cause: None,
                wrap_up_secs: None
            })]
        );
        assert_eq!(desk.poll_timeout(), None);
        desk.handle_timeout(at(3600));
        assert_eq!(drain(&mut desk), vec![]);
        assert_eq!(desk.phase().name(), "wrap_up");
    }
}

#[test]
fn a_limit_counts_from_the_end_of_the_call_or_from_now() {
    let mut desk = in_call(5, false);
    end_call(&mut desk, 5);
    desk.handle_input(
        Input::WrapUpLimit {
            call: 5,
            cause: None,
            ended_at: Some(t0()),
            limit_secs: Some(2),
        },
        at(10),
    );
    assert!(
        matches!(
            drain(&mut desk).as_slice(),
            [Action::Send(Reply::CallEnded {
                wrap_up_secs: Some(0),
                ..
            })]
        ),
        "a wrap-up past its limit has nothing left"
    );
    assert_eq!(desk.poll_timeout(), Some(at(2)));

    let mut desk = in_call(5, false);
    end_call(&mut desk, 5);
    desk.handle_input(
        Input::WrapUpLimit {
            call: 5,
            cause: None,
            ended_at: None,
            limit_secs: Some(20),
        },
        at(10),
    );
    assert_eq!(desk.poll_timeout(), Some(at(30)));
}

#[test]
fn the_wrap_up_deadline_closes_it_and_the_agent_rejoins() {
    let mut desk = wrapping_up(30);
    desk.handle_timeout(at(29));
    assert_eq!(drain(&mut desk), vec![], "not yet due");
    assert_eq!(desk.phase().name(), "wrap_up");
    desk.handle_timeout(at(30));
    assert_eq!(
        drain(&mut desk),
        vec![
            Action::ExpireWrapUp { call: 5 },
            Action::Send(Reply::WrapUpExpired { call: 5 }),
            Action::Join {
                campaign: SPRING,
                leave: None
            }
        ]
    );
    assert_eq!(desk.poll_timeout(), None);
    assert_eq!(
        feed(
            &mut desk,
            Input::Disposition {
                call: 5,
                disposition: sale()
            }
        ),
        refused(Refusal::NoDispositionDue),
        "the closed wrap-up takes no disposition"
    );
    feed(
        &mut desk,
        Input::Joined {
            campaign: SPRING,
            preview: false,
        },
    );
    assert_eq!(desk.phase(), &Phase::Ready);
    desk.handle_timeout(at(60));
    assert_eq!(drain(&mut desk), vec![], "it fires once");
}

#[test]
fn a_disposition_for_the_call_due_is_saved_then_the_agent_rejoins() {
    let mut desk = wrapping_up(30);
    assert_eq!(
        feed(
            &mut desk,
            Input::Disposition {
                call: 6,
                disposition: sale()
            }
        ),
        refused(Refusal::NoDispositionDue)
    );
    assert_eq!(
        feed(
            &mut desk,
            Input::Disposition {
                call: 5,
                disposition: sale()
            }
        ),
        vec![Action::SaveDisposition {
            campaign: SPRING,
            call: 5,
            disposition: sale()
        }]
    );
    assert_eq!(desk.poll_timeout(), Some(at(30)), "due until saved");
    assert_eq!(
        feed(&mut desk, Input::DispositionSaved { call: 5 }),
        vec![
            Action::Send(Reply::Saved { call: 5 }),
            Action::Join {
                campaign: SPRING,
                leave: None
            }
        ]
    );
    assert_eq!(desk.poll_timeout(), None, "a saved wrap-up never expires");
    feed(
        &mut desk,
        Input::Joined {
            campaign: SPRING,
            preview: false,
        },
    );
    assert_eq!(desk.phase(), &Phase::Ready);
}

#[test]
fn a_disposition_outside_a_wrap_up_is_refused() {
    for mut desk in [in_call(5, false), ready_in(SPRING, false), Desk::new()] {
        assert_eq!(
            feed(
                &mut desk,
                Input::Disposition {
                    call: 5,
                    disposition: sale()
                }
            ),
            refused(Refusal::NoDispositionDue)
        );
    }
}

#[test]
fn an_end_time_at_the_edge_of_the_calendar_sets_no_deadline() {
    let mut desk = in_call(5, false);
    end_call(&mut desk, 5);
    let out = wrap_limit(&mut desk, 5, Some(DateTime::<Utc>::MAX_UTC), Some(30));
    assert_eq!(
        out,
        vec![Action::Send(Reply::CallEnded {
            call: 5,
            cause: None,
            wrap_up_secs: None
        })]
    );
    assert_eq!(desk.poll_timeout(), None);
}
