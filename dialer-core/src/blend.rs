//! Blending: how many Ready agents a campaign leaves idle for the inbound queue it shares them with.
//!
//! **Erlang C.** A queue with Poisson arrivals at rate `λ` per second,
//! exponential handle times of mean `h` (talk plus wrap-up) and `N` agents
//! carries `a = λh` erlangs. With `N > a` a caller waits at all with
//! probability
//!
//! ```text
//! C(N, a) = N·B(N, a) / (N − a·(1 − B(N, a)))
//! ```
//!
//! where `B` is Erlang B, computed by its recursion `B(0, a) = 1`,
//! `B(n, a) = a·B(n−1, a) / (n + a·B(n−1, a))`: every step stays in [0, 1],
//! so there is no factorial or power to overflow. The share answered within
//! `T` seconds (the service level) is `1 − C(N, a)·exp(−(N − a)·T/h)`, and
//! [`agents_for_service_level`] is the smallest `N` that reaches a target.
//! (A. K. Erlang, 1917; in the form of G. Koole, *Call Center Optimization*,
//! 2013, ch. 5, or any queueing text's M/M/N chapter.)
//!
//! **The threshold.** S. Bhulai and G. Koole, "A queueing model for call
//! blending in call centers", IEEE Transactions on Automatic Control
//! 48(8):1434–1438, 2003, show that with an endless supply of outbound work,
//! agents shared by both should start outbound work only while more than `k`
//! agents are idle: keeping `k` in reserve is the optimal policy when both
//! kinds of call take the same time on average, and close to it otherwise.
//! Under that policy, with `s` agents all taking time `h`, the number of
//! agents busy (on either kind) plus callers waiting is a birth-death chain on
//! `s − k, s − k + 1, …`: inbound arrivals raise it, each busy agent's end
//! lowers it, and an agent freed while `k` are idle goes straight to outbound
//! work. It is the M/M/s chain cut off below `s − k`, so a caller finds no
//! idle agent with probability
//!
//! ```text
//! W(k) = 1 / (1 + (1 − ρ)·Σ_{j=1..k} s!/((s−j)!·a^j)),   ρ = a/s,
//! ```
//!
//! which is 1 for `k = 0` and `C(s, a)` for `k = s`. A caller who finds none
//! waits, as in Erlang C, an exponential time of rate `s/h − λ`. A dialler
//! adds a delay the paper has no need of: agents who come free within the
//! `lead` (the time from dialling to answer, [`crate::Pacer::reach`]) are
//! already promised to outbound calls dialled before the caller came. So
//! the threshold's service level is taken as
//!
//! ```text
//! SL(k) = 1 − W(k)·exp(−(s/h − λ)·max(T − lead, 0))
//! ```
//!
//! and [`reserve`] keeps the smallest `k` with `SL(k)` at the target. It
//! takes `h` as the inbound handle time for every agent, which errs towards
//! more reserve when outbound calls are the shorter. It never keeps more
//! than a dedicated group would need, `N − on_inbound` with `N` from Erlang
//! C, and adds one agent for each caller already waiting, who takes the next
//! agent to come free.

use std::time::Duration;

/// The largest number of agents [`agents_for_service_level`] answers.
pub const MAX_AGENTS: u32 = 100_000;

/// A service-level target: `fraction` of calls answered within `within`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServiceTarget {
    /// Share of offered calls to answer in time, as 0.8 for 80 %.
    pub fraction: f64,
    /// The answer time counted as in time.
    pub within: Duration,
}

impl Default for ServiceTarget {
    fn default() -> Self {
        Self {
            fraction: 0.8,
            within: Duration::from_secs(20),
        }
    }
}

/// An inbound queue's expected traffic and its target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueueLoad {
    /// Calls offered per second, as forecast or estimated.
    pub arrivals_per_sec: f64,
    /// Mean handle time of a call: talk plus wrap-up.
    pub handle: Duration,
    /// The service level to meet.
    pub target: ServiceTarget,
}

/// The agents a queue shares with a campaign, as they stand now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Floor {
    /// Agents staffed in the blend, whatever they are doing.
    pub staffed: u32,
    /// Agents handling an inbound call, talking or wrapping up.
    pub on_inbound: u32,
    /// Inbound callers waiting for an agent.
    pub waiting: u32,
    /// How long agents who come free stay promised to outbound lines already dialled.
    pub lead: Duration,
}

/// Returns Erlang B, the share of calls blocked with `agents` and no queue.
pub fn erlang_b(agents: u32, erlangs: f64) -> f64 {
    let a = load(erlangs);
    if a.is_infinite() {
        return 1.0;
    }
    let mut b = 1.0;
    for n in 1..=agents {
        b = a * b / (f64::from(n) + a * b);
    }
    b
}

/// Returns Erlang C, the probability that a caller waits at all (1 when `agents <= erlangs`).
pub fn erlang_c(agents: u32, erlangs: f64) -> f64 {
    erlang_c_from_b(agents, load(erlangs), erlang_b(agents, erlangs))
}

/// Returns the share of calls answered within `within` by `agents`, per Erlang C.
pub fn service_level(
    agents: u32,
    arrivals_per_sec: f64,
    handle: Duration,
    within: Duration,
) -> f64 {
    let a = load(load(arrivals_per_sec) * handle.as_secs_f64());
    service_level_from_c(agents, a, erlang_c(agents, a), handle, within)
}

/// Returns the fewest agents whose Erlang C service level reaches `fraction`
/// within `within`, at most [`MAX_AGENTS`].
pub fn agents_for_service_level(
    arrivals_per_sec: f64,
    handle: Duration,
    within: Duration,
    fraction: f64,
) -> u32 {
    let a = load(load(arrivals_per_sec) * handle.as_secs_f64());
    fewest_agents(a, handle, within, fraction, MAX_AGENTS).unwrap_or(MAX_AGENTS)
}

/// Returns `W(k)`: the probability that a caller finds none of `staffed`
/// shared agents idle when outbound work leaves `threshold` of them idle.
pub fn pooled_wait_probability(staffed: u32, erlangs: f64, threshold: u32) -> f64 {
    let a = load(erlangs);
    let s = f64::from(staffed);
    if a >= s {
        return 1.0;
    }
    if a == 0.0 {
        return if threshold == 0 { 1.0 } else { 0.0 };
    }
    let mut term = 1.0;
    let mut sum = 0.0;
    for j in 1..=threshold.min(staffed) {
        // s!/((s-j)!·a^j), built one factor at a time.
        term *= f64::from(staffed - j + 1) / a;
        sum += term;
    }
    1.0 / (1.0 + (1.0 - a / s) * sum)
}

/// Returns `SL(k)` of the module docs: the service level of the queue when
/// outbound work leaves `threshold` idle agents on this floor.
pub fn pooled_service_level(queue: &QueueLoad, floor: &Floor, threshold: u32) -> f64 {
    let lambda = load(queue.arrivals_per_sec);
    let h = queue.handle.as_secs_f64();
    let a = load(lambda * h);
    if a == 0.0 {
        return 1.0;
    }
    if a >= f64::from(floor.staffed) {
        return 0.0;
    }
    let drain = f64::from(floor.staffed) / h - lambda;
    let after_lead = queue.target.within.saturating_sub(floor.lead).as_secs_f64();
    1.0 - pooled_wait_probability(floor.staffed, a, threshold) * (-drain * after_lead).exp()
}

/// Returns how many Ready agents outbound dialling must leave idle now.
///
/// The threshold `k` of the module docs, at most what a dedicated Erlang C
/// group would still lack, plus one agent per waiting caller. With no
/// inbound traffic it is the waiting callers alone; when the floor cannot
/// carry the queue's load it is every staffed agent.
pub fn reserve(queue: &QueueLoad, floor: &Floor) -> u32 {
    let lambda = load(queue.arrivals_per_sec);
    if load(lambda * queue.handle.as_secs_f64()) == 0.0 {
        return floor.waiting;
    }
    let target = queue.target;
    // Only whether the dedicated group lacks fewer than `staffed` matters,
    // so its size is searched no further: the cost stays linear in the floor.
    let a = lambda * queue.handle.as_secs_f64();
    let limit = floor.staffed.saturating_add(floor.on_inbound);
    let most = fewest_agents(a, queue.handle, target.within, target.fraction, limit)
        .map_or(floor.staffed, |n| n.saturating_sub(floor.on_inbound))
        .min(floor.staffed);
    // W(k) built up one threshold at a time, as in pooled_wait_probability.
    let s = f64::from(floor.staffed);
    let threshold = if a >= s {
        most
    } else {
        let drain = s / queue.handle.as_secs_f64() - lambda;
        let after_lead = target.within.saturating_sub(floor.lead).as_secs_f64();
        let late = (-drain * after_lead).exp();
        let (mut term, mut sum) = (1.0, 0.0);
        let mut k = 0;
        while k < most && 1.0 - late / (1.0 + (1.0 - a / s) * sum) < target.fraction {
            k += 1;
            term *= f64::from(floor.staffed - k + 1) / a;
            sum += term;
        }
        k
    };
    threshold.saturating_add(floor.waiting)
}

/// Returns the fewest agents, at most `limit`, whose Erlang C service level
/// reaches `fraction`: none when even `limit` agents fall short.
fn fewest_agents(
    a: f64,
    handle: Duration,
    within: Duration,
    fraction: f64,
    limit: u32,
) -> Option<u32> {
    let a = load(a);
    if a == 0.0 || fraction.is_nan() || fraction <= 0.0 {
        return Some(0);
    }
    if !a.is_finite() || a >= f64::from(limit) {
        return None;
    }
    // Erlang B is carried from one count to the next, so the search costs
    // one step of the recursion per agent.
    let mut b = 1.0;
    for n in 1..=limit {
        b = a * b / (f64::from(n) + a * b);
        let c = erlang_c_from_b(n, a, b);
        if service_level_from_c(n, a, c, handle, within) >= fraction {
            return Some(n);
        }
    }
    None
}

/// Reads a rate or a load: anything not a positive number is none.
fn load(x: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

fn erlang_c_from_b(agents: u32, a: f64, b: f64) -> f64 {
    let n = f64::from(agents);
    if a == 0.0 {
        return 0.0;
    }
    if n <= a {
        return 1.0;
    }
    (n * b / (n - a * (1.0 - b))).clamp(0.0, 1.0)
}

fn service_level_from_c(agents: u32, a: f64, c: f64, handle: Duration, within: Duration) -> f64 {
    let n = f64::from(agents);
    if a == 0.0 {
        return 1.0;
    }
    if n <= a {
        return 0.0;
    }
    let h = handle.as_secs_f64();
    1.0 - c * (-(n - a) * within.as_secs_f64() / h).exp()
}

#[cfg(test)]
mod tests;
