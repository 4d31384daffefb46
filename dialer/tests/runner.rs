//! The campaign runner over real calls: the gateway, two simulated carriers
//! (one for customers, one standing in for agents' phones) and an
//! in-memory lead source.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use dialer::compliance::{AbandonTarget, Counts};
use dialer::pacer::{AgentId, AgentState, Mode, PacerConfig};
use dialer::retry::AttemptOutcome;
use dialer::runner::{
    self, AgentUpdate, CallOutcome, CallPhase, Lead, LeadSource, Plan, Report, RunnerError,
};
use sip_gateway::carrier::{Carrier, CarrierAudio, CarrierConfig, Mix, Outcome};
use sip_gateway::gateway::{
    CallEventKind, CallRef, DialRequest, Gateway, GatewayConfig, TrunkConfig,
};
use sip_gateway::media::tone::{dominant_frequency, sine};
use tokio::sync::mpsc;
use vocab::{ContactId, LeadId};

#[derive(Default)]
struct Ledger {
    pending: Vec<Lead>,
    placed: Vec<CallRef>,
    answered: Vec<CallRef>,
    connected: Vec<DateTime<Utc>>,
    abandoned: Vec<DateTime<Utc>>,
    finished: Vec<(i64, CallOutcome)>,
    released: Vec<i64>,
    recorded: Vec<(CallRef, PathBuf)>,
}

#[derive(Clone, Default)]
struct MemoryLeads(Arc<Mutex<Ledger>>);

impl MemoryLeads {
    fn with(numbers: &[&str]) -> Self {
        let leads = numbers
            .iter()
            .enumerate()
            .map(|(i, n)| Lead {
                id: LeadId(i as i64 + 1),
                contact_id: ContactId(100 + i as i64),
                number: (*n).to_owned(),
                owner: None,
            })
            .collect();
        MemoryLeads(Arc::new(Mutex::new(Ledger {
            pending: leads,
            ..Ledger::default()
        })))
    }

    fn finished(&self) -> Vec<(i64, CallOutcome)> {
        self.0.lock().expect("lock").finished.clone()
    }

    fn placed_and_answered(&self) -> (usize, usize) {
        let l = self.0.lock().expect("lock");
        (l.placed.len(), l.answered.len())
    }
}

impl LeadSource for MemoryLeads {
    async fn claim(&self, n: usize, _agents: &[AgentId]) -> Result<Vec<Lead>, RunnerError> {
        let mut l = self.0.lock().expect("lock");
        let k = n.min(l.pending.len());
        Ok(l.pending.drain(..k).collect())
    }

    async fn placed(&self, _lead: &Lead, call: CallRef) -> Result<(), RunnerError> {
        self.0.lock().expect("lock").placed.push(call);
        Ok(())
    }

    async fn answered(&self, call: CallRef, _at: DateTime<Utc>) -> Result<(), RunnerError> {
        self.0.lock().expect("lock").answered.push(call);
        Ok(())
    }

    async fn connected(&self, _call: CallRef, at: DateTime<Utc>) -> Result<(), RunnerError> {
        self.0.lock().expect("lock").connected.push(at);
        Ok(())
    }

    async fn abandoned(&self, _call: CallRef, at: DateTime<Utc>) -> Result<(), RunnerError> {
        self.0.lock().expect("lock").abandoned.push(at);
        Ok(())
    }

    async fn finished(
        &self,
        lead: &Lead,
        _call: CallRef,
        outcome: CallOutcome,
        _at: DateTime<Utc>,
    ) -> Result<(), RunnerError> {
        self.0
            .lock()
            .expect("lock")
            .finished
            .push((lead.id.0, outcome));
        Ok(())
    }

    async fn release(&self, lead: &Lead) -> Result<(), RunnerError> {
        self.0.lock().expect("lock").released.push(lead.id.0);
        Ok(())
    }

    async fn recorded(
        &self,
        _lead: &Lead,
        call: CallRef,
        path: &std::path::Path,
    ) -> Result<(), RunnerError> {
        let entry = (call, path.to_path_buf());
        self.0.lock().expect("lock").recorded.push(entry);
        Ok(())
    }

    async fn figures(&self, _now: DateTime<Utc>) -> Result<(Counts, Counts), RunnerError> {
        let l = self.0.lock().expect("lock");
        let abandoned = l.abandoned.len() as u64;
        let counts = Counts {
            live: l.connected.len() as u64 + abandoned,
            abandoned,
        };
        Ok((counts, counts))
    }
}

/// Starts a runner on the system clock.
fn spawn(
    plan: Plan,
    leads: MemoryLeads,
    gateway: Gateway,
    reports: mpsc::UnboundedSender<Report>,
) -> runner::RunnerHandle {
    runner::spawn(plan, leads, gateway, Arc::new(vocab::SystemClock), reports)
}

struct Floor {
    gateway: Gateway,
    _customers: Carrier,
    _agents: Carrier,
}

async fn floor(customers: Mix, hangup_after: Option<Duration>) -> Floor {
    floor_with(customers_config(customers, hangup_after)).await
}

/// The customers' carrier: answers after 300 ms and plays 440 Hz.
fn customers_config(customers: Mix, hangup_after: Option<Duration>) -> CarrierConfig {
    CarrierConfig {
        sip_addr: "127.0.0.1:0".parse().expect("addr"),
        mix: customers,
        ring_delay: Duration::from_millis(50),
        answer_delay: Duration::from_millis(300),
        hangup_after,
        audio: CarrierAudio::Tone(440.0),
        ..CarrierConfig::default()
    }
}

async fn floor_with(customers: CarrierConfig) -> Floor {
    let customers = Carrier::start(customers).await.expect("customer carrier");
    let agents = Carrier::start(CarrierConfig {
        sip_addr: "127.0.0.1:0".parse().expect("addr"),
        mix: Mix::always(Outcome::Answer),
        ring_delay: Duration::from_millis(10),
        answer_delay: Duration::from_millis(20),
        audio: CarrierAudio::Tone(1000.0),
        ..CarrierConfig::default()
    })
    .await
    .expect("agent carrier");
    let config = GatewayConfig {
        t1: Duration::from_millis(100),
        ..GatewayConfig::loopback()
    };
    let mut cust = TrunkConfig::new("customers", customers.sip_addr());
    cust.max_cps = 100;
    let mut ag = TrunkConfig::new("agents", agents.sip_addr());
    ag.max_cps = 100;
    let gateway = Gateway::start(config, vec![cust, ag])
        .await
        .expect("gateway");
    Floor {
        gateway,
        _customers: customers,
        _agents: agents,
    }
}

/// Places the agent's nailed-up media leg: here a call to a phone that
/// answers and plays 1000 Hz.
async fn agent_leg(gateway: &Gateway) -> CallRef {
    let mut events = gateway.events();
    let call = gateway
        .dial(DialRequest {
            number: "+441632960999".into(),
            caller_id: "+441632960000".into(),
            trunk: "agents".into(),
            ring_timeout: Duration::from_secs(15),
            call_ref: CallRef::random(),
            detect_machine: false,
        })
        .await
        .expect("agent leg placed");
    let answered = async {
        loop {
            let e = events.recv().await.expect("events");
            if e.call_ref == call && e.kind == CallEventKind::Answered {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), answered)
        .await
        .expect("agent leg answered");
    call
}

fn plan(mode: Mode, abandon_message: Option<PathBuf>) -> Plan {
    Plan {
        pacer: PacerConfig {
            mode,
            target: AbandonTarget::default(),
            ..PacerConfig::default()
        },
        caller_id: "+441632960000".into(),
        trunk: "customers".into(),
        ring_timeout: Duration::from_secs(15),
        abandon_message,
        voicemail_message: None,
        recordings: None,
        detect_machines: false,
    }
}

async fn next_report(reports: &mut mpsc::UnboundedReceiver<Report>) -> Report {
    loop {
        let r = tokio::time::timeout(Duration::from_secs(15), reports.recv())
            .await
            .expect("a report within 15 s")
            .expect("runner alive");
        if !matches!(r, Report::Figures { .. }) {
            return r;
        }
    }
}

async fn phase(reports: &mut mpsc::UnboundedReceiver<Report>, wanted: CallPhase) -> Report {
    loop {
        let r = next_report(reports).await;
        if let Report::Call { phase, .. } = &r {
            if *phase == wanted {
                return r;
            }
        }
    }
}

#[tokio::test]
async fn progressive_calls_are_bridged_to_the_ready_agent_with_audio_both_ways() {
    let f = floor(Mix::always(Outcome::Answer), Some(Duration::from_secs(2))).await;
    let leg = agent_leg(&f.gateway).await;
    let leads = MemoryLeads::with(&["+441632960101", "+441632960102"]);
    let dir = std::env::temp_dir().join(format!("dialcrm-runner-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (tx, mut reports) = mpsc::unbounded_channel();
    let handle = spawn(
        Plan {
            recordings: Some(dir.clone()),
            ..plan(Mode::Progressive, None)
        },
        leads.clone(),
        f.gateway.clone(),
        tx,
    );
    let agent = AgentId(7);
    handle.agent(AgentUpdate::State {
        agent,
        state: AgentState::Ready,
        leg: Some(leg),
    });
    for n in 0..2 {
        let Report::Call {
            call_ref,
            agent: who,
            lead,
            ..
        } = phase(&mut reports, CallPhase::Connected).await
        else {
            unreachable!("phase returns call reports")
        };
        assert_eq!(who, Some(agent));
        assert_eq!(lead.id.0, n + 1, "leads in order");
        // The runner records every connected call and says where.
        let wav = dir.join(format!("{call_ref}.wav"));
        phase(&mut reports, CallPhase::Ended).await;
        let recorded = leads.0.lock().expect("lock").recorded.clone();
        assert_eq!(recorded.last(), Some(&(call_ref, wav.clone())));
        let (left, right) = channels(&wav);
        let at = |s: &[i16]| dominant_frequency(s, &[440.0, 1000.0], 8000, 1e-4);
        assert_eq!(
            at(&left[left.len() / 4..]),
            Some(1000.0),
            "the agent to the customer"
        );
        assert_eq!(
            at(&right[right.len() / 4..]),
            Some(440.0),
            "the customer to the agent"
        );
        // The desk puts the agent back to Ready after wrap-up.
        handle.agent(AgentUpdate::State {
            agent,
            state: AgentState::Ready,
            leg: Some(leg),
        });
    }
    let finished = leads.finished();
    assert_eq!(finished.len(), 2);
    assert_eq!(leads.0.lock().expect("lock").recorded.len(), 2);
    for (_, outcome) in finished {
        assert!(matches!(outcome, CallOutcome::Conversation { agent: a, .. } if a == agent));
    }
    assert_eq!(leads.placed_and_answered(), (2, 2));
    handle.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_answered_call_without_an_agent_is_abandoned_with_the_message() {
    let f = floor(Mix::always(Outcome::Answer), None).await;
    let leg = agent_leg(&f.gateway).await;
    let dir = std::env::temp_dir().join(format!("dialcrm-abandon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let message = dir.join("sorry.wav");
    write_wav(&message, &sine(697.0, 8000, 8000, 8000));
    let leads = MemoryLeads::with(&["+441632960201"]);
    let (tx, mut reports) = mpsc::unbounded_channel();
    let handle = spawn(
        plan(Mode::Progressive, Some(message)),
        leads.clone(),
        f.gateway.clone(),
        tx,
    );
    let agent = AgentId(9);
    handle.agent(AgentUpdate::State {
        agent,
        state: AgentState::Ready,
        leg: Some(leg),
    });
    let Report::Call { call_ref, .. } = phase(&mut reports, CallPhase::Dialling).await else {
        unreachable!("phase returns call reports")
    };
    // The agent steps away while the line rings.
    handle.agent(AgentUpdate::State {
        agent,
        state: AgentState::Paused,
        leg: Some(leg),
    });
    let wav = dir.join("abandoned.wav");
    let Report::Call {
        call_ref: answered, ..
    } = phase(&mut reports, CallPhase::Answered).await
    else {
        unreachable!("phase returns call reports")
    };
    assert_eq!(answered, call_ref);
    f.gateway.record(call_ref, &wav).await.expect("record");
    let started = tokio::time::Instant::now();
    phase(&mut reports, CallPhase::Abandoned).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1800) && waited < Duration::from_secs(4),
        "abandoned after the 2 s grace, not before: {waited:?}"
    );
    let Report::Call { cause, .. } = phase(&mut reports, CallPhase::Ended).await else {
        unreachable!("phase returns call reports")
    };
    assert!(cause.is_some());
    assert_eq!(
        leads.finished(),
        vec![(1, CallOutcome::Unconnected(AttemptOutcome::Abandoned))]
    );
    let (left, _) = channels(&wav);
    let heard = dominant_frequency(&left, &[440.0, 697.0, 1000.0], 8000, 1e-4);
    assert_eq!(heard, Some(697.0), "the customer heard the abandon message");
    handle.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn screened_calls_hang_up_on_machines_and_connect_people() {
    for (outcome, connects) in [(Outcome::Machine, false), (Outcome::Answer, true)] {
        // People say one word and wait; machines say eight.
        let customers = customers_config(Mix::always(outcome), Some(Duration::from_secs(3)));
        let f = floor_with(customers.speaking(440.0)).await;
        let leg = agent_leg(&f.gateway).await;
        let leads = MemoryLeads::with(&["+441632960301"]);
        let (tx, mut reports) = mpsc::unbounded_channel();
        let handle = spawn(
            Plan {
                detect_machines: true,
                ..plan(Mode::Progressive, None)
            },
            leads.clone(),
            f.gateway.clone(),
            tx,
        );
        let agent = AgentId(11);
        handle.agent(AgentUpdate::State {
            agent,
            state: AgentState::Ready,
            leg: Some(leg),
        });
        let mut phases = Vec::new();
        while phases.last() != Some(&CallPhase::Ended) {
            if let Report::Call { phase, .. } = next_report(&mut reports).await {
                phases.push(phase);
            }
        }
        assert!(phases.contains(&CallPhase::Answered), "{phases:?}");
        assert_eq!(
            phases.contains(&CallPhase::Connected),
            connects,
            "{outcome:?}: {phases:?}"
        );
        let finished = leads.finished();
        match outcome {
            Outcome::Machine => assert!(
                matches!(
                    finished[..],
                    [(1, CallOutcome::Unconnected(AttemptOutcome::Machine))]
                ),
                "{finished:?}"
            ),
            _ => assert!(
                matches!(finished[..], [(1, CallOutcome::Conversation { agent: a, .. })] if a == agent),
                "{finished:?}"
            ),
        }
        handle.stop().await;
    }
}

#[tokio::test]
async fn busy_lines_are_recorded_as_busy() {
    let f = floor(Mix::always(Outcome::Busy), None).await;
    let leg = agent_leg(&f.gateway).await;
    let leads = MemoryLeads::with(&["+441632960301"]);
    let (tx, mut reports) = mpsc::unbounded_channel();
    let handle = spawn(
        plan(Mode::Progressive, None),
        leads.clone(),
        f.gateway.clone(),
        tx,
    );
    handle.agent(AgentUpdate::State {
        agent: AgentId(1),
        state: AgentState::Ready,
        leg: Some(leg),
    });
    phase(&mut reports, CallPhase::Ended).await;
    assert_eq!(
        leads.finished(),
        vec![(1, CallOutcome::Unconnected(AttemptOutcome::Busy))]
    );
    handle.stop().await;
}

async fn preview(reports: &mut mpsc::UnboundedReceiver<Report>) -> Option<Lead> {
    loop {
        if let Report::Preview { lead, .. } = next_report(reports).await {
            return lead;
        }
    }
}

#[tokio::test]
async fn preview_shows_the_contact_first_and_dials_only_what_the_agent_chooses() {
    let f = floor(Mix::always(Outcome::Answer), Some(Duration::from_secs(1))).await;
    let leg = agent_leg(&f.gateway).await;
    let leads = MemoryLeads::with(&["+441632960401", "+441632960402", "+441632960403"]);
    let (tx, mut reports) = mpsc::unbounded_channel();
    let handle = spawn(
        plan(Mode::Preview, None),
        leads.clone(),
        f.gateway.clone(),
        tx,
    );
    let agent = AgentId(4);
    handle.agent(AgentUpdate::State {
        agent,
        state: AgentState::Ready,
        leg: Some(leg),
    });
    handle.agent(AgentUpdate::PreviewNext { agent });
    let first = preview(&mut reports).await.expect("a lead to look at");
    assert_eq!(first.id.0, 1);
    assert_eq!(
        leads.placed_and_answered().0,
        0,
        "nothing is dialled on preview"
    );
    handle.agent(AgentUpdate::PreviewSkip { agent });
    handle.agent(AgentUpdate::PreviewNext { agent });
    let second = preview(&mut reports).await.expect("another lead");
    assert_eq!(second.id.0, 2, "the skipped lead is held back");
    handle.agent(AgentUpdate::PreviewCall { agent });
    let Report::Call {
        lead, agent: who, ..
    } = phase(&mut reports, CallPhase::Connected).await
    else {
        unreachable!("phase returns call reports")
    };
    assert_eq!(
        (lead.id.0, who),
        (2, Some(agent)),
        "the chosen lead, to this agent"
    );
    phase(&mut reports, CallPhase::Ended).await;
    handle.agent(AgentUpdate::State {
        agent,
        state: AgentState::Ready,
        leg: Some(leg),
    });
    handle.agent(AgentUpdate::PreviewNext { agent });
    let third = preview(&mut reports).await.expect("the last lead");
    assert_eq!(third.id.0, 3);
    assert_eq!(
        leads.placed_and_answered().0,
        1,
        "only the chosen call was placed"
    );
    handle.stop().await;
    let released = leads.0.lock().expect("lock").released.clone();
    assert_eq!(released, vec![1, 3], "held leads are given back on stop");
}

fn write_wav(path: &std::path::Path, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create");
    for s in samples {
        w.write_sample(*s).expect("write");
    }
    w.finalize().expect("finalize");
}

fn channels(path: &std::path::Path) -> (Vec<i16>, Vec<i16>) {
    let mut r = hound::WavReader::open(path).expect("wav");
    let s: Vec<i16> = r.samples::<i16>().map(|x| x.expect("sample")).collect();
    (
        s.iter().step_by(2).copied().collect(),
        s.iter().skip(1).step_by(2).copied().collect(),
    )
}

#[tokio::test]
async fn a_paused_agent_dials_by_hand_and_takes_the_call() {
    let f = floor(Mix::always(Outcome::Answer), Some(Duration::from_secs(1))).await;
    let leg = agent_leg(&f.gateway).await;
    // Nothing to claim: whatever is dialled here is the agent's own choice.
    let leads = MemoryLeads::with(&[]);
    let (tx, mut reports) = mpsc::unbounded_channel();
    let handle = spawn(
        plan(Mode::Predictive, None),
        leads.clone(),
        f.gateway.clone(),
        tx,
    );
    let agent = AgentId(11);
    let lead = Lead {
        id: LeadId(42),
        contact_id: ContactId(420),
        number: "+441632960420".into(),
        owner: None,
    };
    handle.agent(AgentUpdate::State {
        agent,
        state: AgentState::Ready,
        leg: Some(leg),
    });
    // Ready agents are the dialler's: a manual dial is refused and the
    // lead goes back.
    handle.agent(AgentUpdate::ManualDial {
        agent,
        lead: lead.clone(),
    });
    assert_eq!(
        next_report(&mut reports).await,
        Report::ManualRefused { agent }
    );
    assert_eq!(leads.0.lock().expect("lock").released, [42]);
    handle.agent(AgentUpdate::State {
        agent,
        state: AgentState::Paused,
        leg: Some(leg),
    });
    handle.agent(AgentUpdate::ManualDial {
        agent,
        lead: lead.clone(),
    });
    for wanted in [CallPhase::Dialling, CallPhase::Connected, CallPhase::Ended] {
        let Report::Call {
            agent: who,
            lead: called,
            ..
        } = phase(&mut reports, wanted).await
        else {
            unreachable!("phase returns call reports")
        };
        assert_eq!(who, Some(agent), "{wanted:?} names the dialling agent");
        assert_eq!(called, lead);
    }
    let finished = leads.finished();
    assert!(
        matches!(finished[..], [(42, CallOutcome::Conversation { agent: a, .. })] if a == agent),
        "{finished:?}"
    );
    handle.stop().await;
}

/// The customers' carrier as answering machines that greet with eight
/// words (the last ends 3.45 s after the answer), then a 1000 Hz beep if
/// `beep`, then keep quiet while they record, for 12 s.
fn machines(beep: bool) -> CarrierConfig {
    CarrierConfig {
        machine_greeting: Duration::from_secs(12),
        machine_audio: Some(CarrierAudio::Greeting {
            words: 8,
            beep_hz: beep.then_some(1000.0),
        }),
        ..customers_config(Mix::always(Outcome::Machine), None)
    }
}

/// A one-second 697 Hz voicemail message in a fresh folder.
fn voicemail_message(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("dialcrm-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let message = dir.join("voicemail.wav");
    write_wav(&message, &sine(697.0, 8000, 8000, 8000));
    (dir, message)
}

/// How many 200 ms stretches of what the carrier heard are the message.
fn message_chunks(heard: &[i16]) -> usize {
    heard
        .chunks(1600)
        .filter(|c| dominant_frequency(c, &[440.0, 697.0, 1000.0], 8000, 1e-4) == Some(697.0))
        .count()
}

#[tokio::test]
async fn a_screened_machine_gets_the_voicemail_message_after_its_beep() {
    let f = floor_with(machines(true)).await;
    f._customers.start_capture();
    let leg = agent_leg(&f.gateway).await;
    let (dir, message) = voicemail_message("voicemail-drop");
    let leads = MemoryLeads::with(&["+441632960401"]);
    let (tx, mut reports) = mpsc::unbounded_channel();
    let handle = spawn(
        Plan {
            detect_machines: true,
            voicemail_message: Some(message),
            ..plan(Mode::Progressive, None)
        },
        leads.clone(),
        f.gateway.clone(),
        tx,
    );
    handle.agent(AgentUpdate::State {
        agent: AgentId(12),
        state: AgentState::Ready,
        leg: Some(leg),
    });
    phase(&mut reports, CallPhase::Answered).await;
    let answered = tokio::time::Instant::now();
    let Report::Call { agent, .. } = phase(&mut reports, CallPhase::Voicemail).await else {
        unreachable!("phase returns call reports")
    };
    assert_eq!(agent, None, "the detector, not an agent, found the machine");
    let Report::Call { agent, .. } = phase(&mut reports, CallPhase::Ended).await else {
        unreachable!("phase returns call reports")
    };
    let took = answered.elapsed();
    assert_eq!(agent, None);
    // The beep comes 4.1 s after the answer; the message lasts 1 s; the
    // machine itself would hang up at 12 s.
    assert!(
        took > Duration::from_secs(5) && took < Duration::from_secs(9),
        "the message was left and the call hung up {took:?} after the answer"
    );
    assert_eq!(
        leads.finished(),
        vec![(1, CallOutcome::Unconnected(AttemptOutcome::Voicemail))]
    );
    let heard = f._customers.take_capture().audio;
    assert!(
        message_chunks(&heard) >= 4,
        "the machine recorded {} chunks of the message",
        message_chunks(&heard)
    );
    handle.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_agent_who_reaches_a_machine_leaves_the_message_and_hears_no_more_of_it() {
    // Unscreened, and a machine with no beep: its greeting ends in quiet.
    let f = floor_with(machines(false)).await;
    f._customers.start_capture();
    let leg = agent_leg(&f.gateway).await;
    let (dir, message) = voicemail_message("voicemail-agent");
    let leads = MemoryLeads::with(&["+441632960402"]);
    let (tx, mut reports) = mpsc::unbounded_channel();
    let handle = spawn(
        Plan {
            voicemail_message: Some(message),
            ..plan(Mode::Progressive, None)
        },
        leads.clone(),
        f.gateway.clone(),
        tx,
    );
    let agent = AgentId(13);
    handle.agent(AgentUpdate::State {
        agent,
        state: AgentState::Ready,
        leg: Some(leg),
    });
    let Report::Call { agent: who, .. } = phase(&mut reports, CallPhase::Connected).await else {
        unreachable!("phase returns call reports")
    };
    assert_eq!(who, Some(agent));
    // The agent hears the greeting for a moment, then moves on.
    tokio::time::sleep(Duration::from_millis(600)).await;
    f._agents.start_capture();
    handle.agent(AgentUpdate::LeaveMessage { agent });
    let Report::Call { agent: who, .. } = phase(&mut reports, CallPhase::Voicemail).await else {
        unreachable!("phase returns call reports")
    };
    assert_eq!(who, Some(agent), "the desk is told its agent is free");
    // Whatever was in flight drains; after that the agent's leg hears nothing
    // of the machine's greeting, which goes on for another 2.5 s.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = f._agents.take_capture();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = f._agents.take_capture().audio;
    let loud = after
        .chunks(160)
        .filter(|c| c.iter().map(|s| i64::from(*s).abs()).max().unwrap_or(0) > 1000)
        .count();
    assert_eq!(loud, 0, "the agent still heard {loud} loud 20 ms frames");
    let Report::Call { agent: who, .. } = phase(&mut reports, CallPhase::Ended).await else {
        unreachable!("phase returns call reports")
    };
    assert_eq!(who, None, "the message's end is no call of the agent's");
    assert_eq!(
        leads.finished(),
        vec![(1, CallOutcome::Unconnected(AttemptOutcome::Voicemail))]
    );
    let heard = f._customers.take_capture().audio;
    assert!(message_chunks(&heard) >= 4, "the machine got the message");
    handle.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
