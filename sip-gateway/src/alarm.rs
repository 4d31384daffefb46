//! One timer per task, re-armed as the task's next deadline moves.
//!
//! A task that made a new `sleep_until` on every turn of its loop registered
//! a timer in tokio's wheel and cleared it again (two locked operations) for
//! every packet it handled. A leg's media timeout moves later with every
//! packet; moving an armed tokio timer later is a lock-free store that the
//! wheel only looks at when the old time comes, so with one timer kept for
//! the task's life a relaying leg costs the wheel nothing per packet.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::time::Sleep;

/// A task's one timer: armed at the next deadline its core asks for, or idle.
#[derive(Debug)]
pub(crate) struct Alarm {
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl Default for Alarm {
    fn default() -> Self {
        Self::new()
    }
}

impl Alarm {
    /// An idle alarm; its timer is not registered until first armed and waited on.
    pub(crate) fn new() -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            armed: None,
        }
    }

    /// Arms the alarm for `deadline`, or idles it for `None`; the same
    /// deadline again changes nothing.
    pub(crate) fn set(&mut self, deadline: Option<Instant>) {
        if deadline == self.armed {
            return;
        }
        self.armed = deadline;
        if let Some(deadline) = deadline {
            self.sleep
                .as_mut()
                .reset(tokio::time::Instant::from_std(deadline));
        }
    }

    /// Waits until the armed deadline, then idles the alarm; an idle alarm never fires.
    pub(crate) fn fired(&mut self) -> Fired<'_> {
        Fired { alarm: self }
    }
}

/// The future of [`Alarm::fired`].
#[derive(Debug)]
pub(crate) struct Fired<'a> {
    alarm: &'a mut Alarm,
}

impl Future for Fired<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let alarm = &mut *self.get_mut().alarm;
        if alarm.armed.is_none() {
            return Poll::Pending;
        }
        match alarm.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                alarm.armed = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_deadline_and_idles_after() {
        let start = tokio::time::Instant::now();
        let mut alarm = Alarm::new();
        alarm.set(Some((start + Duration::from_millis(50)).into_std()));
        alarm.fired().await;
        assert_eq!(start.elapsed(), Duration::from_millis(50));
        let idle = tokio::time::timeout(Duration::from_secs(10), alarm.fired()).await;
        assert!(
            idle.is_err(),
            "an alarm that fired stays idle until armed again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_deadline_moves_it_and_an_earlier_one_too() {
        let start = tokio::time::Instant::now();
        let mut alarm = Alarm::new();
        alarm.set(Some((start + Duration::from_millis(20)).into_std()));
        alarm.set(Some((start + Duration::from_millis(300)).into_std()));
        alarm.fired().await;
        assert_eq!(start.elapsed(), Duration::from_millis(300));

        let start = tokio::time::Instant::now();
        alarm.set(Some((start + Duration::from_secs(5)).into_std()));
        alarm.set(Some((start + Duration::from_millis(40)).into_std()));
        alarm.fired().await;
        assert_eq!(start.elapsed(), Duration::from_millis(40));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idled_alarm_does_not_fire() {
        let start = tokio::time::Instant::now();
        let mut alarm = Alarm::new();
        alarm.set(Some((start + Duration::from_millis(20)).into_std()));
        alarm.set(None);
        let idle = tokio::time::timeout(Duration::from_secs(1), alarm.fired()).await;
        assert!(idle.is_err(), "an idle alarm fired");
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_already_past_fires_at_once() {
        let mut alarm = Alarm::new();
        tokio::time::advance(Duration::from_millis(10)).await;
        alarm.set(Some(
            (tokio::time::Instant::now() - Duration::from_millis(5)).into_std(),
        ));
        tokio::time::timeout(Duration::from_millis(1), alarm.fired())
            .await
            .expect("a deadline in the past fires on the next poll");
    }
}
