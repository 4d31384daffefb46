//! Properties that hold whatever arrives in whatever order.

use super::*;
use proptest::prelude::*;

/// Every input, with calls 1 and 2, for the property below.
fn any_input() -> impl Strategy<Value = Input<u32>> {
    let call = 1u32..3;
    let campaign = (7i64..9).prop_map(CampaignId);
    prop_oneof![
        campaign
            .clone()
            .prop_map(|campaign| Input::Ready { campaign }),
        any::<bool>().prop_map(|known| Input::Pause {
            code: "lunch".into(),
            known
        }),
        Just(Input::PreviewCall),
        Just(Input::PreviewSkip),
        any::<bool>().prop_map(|confirm| Input::ManualDial {
            number: "+442079460000".into(),
            confirm
        }),
        Just(Input::HangUp),
        any::<bool>().prop_map(|on| Input::Hold { on }),
        Just(Input::Digits { digits: "1".into() }),
        any::<bool>().prop_map(|paused| Input::Recording { paused }),
        call.clone().prop_map(|call| Input::Disposition {
            call,
            disposition: sale()
        }),
        Just(Input::AudioConnected),
        Just(Input::PreviewOffered {
            lead: Some(LeadId(1)),
            contact: Some(ContactId(1))
        }),
        call.clone().prop_map(|call| Input::CallRinging { call }),
        (call.clone(), any::<bool>())
            .prop_map(|(call, recorded)| Input::CallConnected { call, recorded }),
        (call.clone(), any::<bool>()).prop_map(|(call, mine)| Input::CallEnded {
            call,
            mine,
            cause: None
        }),
        Just(Input::DialRefused),
        any::<Option<(bool, bool)>>().prop_map(|a| Input::Reconnected {
            attempt: a.map(|(answered, ended)| AttemptStatus { answered, ended })
        }),
        Just(Input::Disconnected),
        Just(Input::SignedOut),
        (campaign, any::<bool>())
            .prop_map(|(campaign, preview)| Input::Joined { campaign, preview }),
        (call.clone(), 0u32..60).prop_map(|(call, limit)| Input::WrapUpLimit {
            call,
            cause: None,
            ended_at: Some(t0()),
            limit_secs: Some(limit)
        }),
        (call.clone(), any::<bool>()).prop_map(|(call, on)| Input::Held { call, on }),
        (call.clone(), any::<bool>())
            .prop_map(|(call, paused)| Input::RecordingChanged { call, paused }),
        Just(Input::ManualDialPlaced {
            number: "+442079460000".into()
        }),
        call.prop_map(|call| Input::DispositionSaved { call }),
    ]
}

proptest! {
    /// Whatever arrives in whatever order, a deadline belongs to a wrap-up,
    /// it fires exactly once, and a state shown names the desk's phase.
    #[test]
    fn deadlines_belong_to_wrap_ups_and_fire_once(
        steps in proptest::collection::vec((any_input(), 0u64..40), 1..60)
    ) {
        let mut desk = Desk::new();
        let mut now = t0();
        for (input, wait) in steps {
            now += Duration::from_secs(wait);
            desk.handle_input(input, now);
            let mut shown = None;
            for action in drain(&mut desk) {
                if let Action::Send(Reply::State { state, .. }) = action {
                    shown = Some(state);
                }
            }
            if let Some(shown) = shown {
                prop_assert_eq!(shown, desk.phase().name());
            }
            if let Some(deadline) = desk.poll_timeout() {
                let wrapping_up = matches!(desk.phase(), Phase::WrapUp { .. });
                prop_assert!(wrapping_up);
                if deadline <= now {
                    desk.handle_timeout(now);
                    let fired = drain(&mut desk);
                    let expired = matches!(fired.first(), Some(Action::ExpireWrapUp { .. }));
                    prop_assert!(expired, "{:?}", fired);
                    prop_assert_eq!(desk.poll_timeout(), None);
                    desk.handle_timeout(now);
                    prop_assert_eq!(drain(&mut desk), vec![]);
                }
            }
        }
    }
}
