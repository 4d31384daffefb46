//! Threads of their own for the legs' media, each a single-threaded runtime.
//!
//! A leg's task does little per packet (a read, a rewrite, a send), so what
//! it costs is mostly waking up: on a work-stealing runtime a leg's task may
//! be woken on one worker and stolen by another, and the threads wake one
//! another to share the work. Legs spread over threads that never share
//! tasks instead each wake only for their own sockets, which are registered
//! with their own thread's poller, so media scales with cores while one
//! leg's packets stay on one thread. The gateway's signalling stays where
//! it was started.
//!
//! With no media threads (the default), legs run on the runtime the gateway
//! was started on, as one task each.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// The runtimes legs are spread over; dropping it stops them and their legs.
#[derive(Debug)]
pub(crate) struct MediaThreads {
    runtimes: Vec<Handle>,
    next: AtomicUsize,
    /// Dropped with this, which ends each thread's wait and so its runtime.
    _stop: Vec<oneshot::Sender<()>>,
}

impl MediaThreads {
    /// Starts `count` media threads; zero keeps legs on the caller's runtime.
    pub fn start(count: usize) -> std::io::Result<Self> {
        let mut runtimes = Vec::with_capacity(count);
        let mut stops = Vec::with_capacity(count);
        for index in 0..count {
            let (stop, stopped) = oneshot::channel::<()>();
            let (started, handle) = std::sync::mpsc::sync_channel(1);
            // The runtime is made, run and dropped on its own thread: a
            // runtime may not be dropped from within another one.
            std::thread::Builder::new()
                .name(format!("media-{index}"))
                .spawn(move || {
                    let runtime = match Builder::new_current_thread().enable_all().build() {
                        Ok(runtime) => runtime,
                        Err(error) => {
                            let _ = started.send(Err(error));
                            return;
                        }
                    };
                    let _ = started.send(Ok(runtime.handle().clone()));
                    // Either a stop or the sender's drop ends the wait; the
                    // runtime then drops here, with the legs still on it.
                    let _ = runtime.block_on(stopped);
                })?;
            let handle = handle
                .recv()
                .map_err(|_| std::io::Error::other("a media thread ended as it started"))??;
            runtimes.push(handle);
            stops.push(stop);
        }
        Ok(MediaThreads {
            runtimes,
            next: AtomicUsize::new(0),
            _stop: stops,
        })
    }

    /// The runtime the next leg goes to: the media threads in turn, or the
    /// caller's own when there are none.
    ///
    /// Must be called from within a runtime when there are no media threads.
    pub fn next(&self) -> Handle {
        if self.runtimes.is_empty() {
            return Handle::current();
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.runtimes.len();
        self.runtimes[index].clone()
    }

    /// How many media threads there are.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.runtimes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn without_media_threads_legs_stay_on_the_callers_runtime() {
        let threads = MediaThreads::start(0).unwrap();
        let caller = thread_name();
        let ran_on = threads.next().spawn(async { thread_name() }).await.unwrap();
        assert_eq!(ran_on, caller);
    }

    #[tokio::test]
    async fn legs_take_the_media_threads_in_turn() {
        let threads = MediaThreads::start(2).unwrap();
        assert_eq!(threads.len(), 2);
        let mut names = Vec::new();
        for _ in 0..4 {
            names.push(threads.next().spawn(async { thread_name() }).await.unwrap());
        }
        assert_eq!(names, ["media-0", "media-1", "media-0", "media-1"]);
    }

    #[tokio::test]
    async fn dropping_the_threads_stops_their_tasks() {
        let threads = MediaThreads::start(1).unwrap();
        let (alive, mut gone) = tokio::sync::mpsc::channel::<()>(1);
        threads.next().spawn(async move {
            let _alive = alive;
            std::future::pending::<()>().await;
        });
        drop(threads);
        let closed = tokio::time::timeout(std::time::Duration::from_secs(5), gone.recv()).await;
        assert_eq!(
            closed,
            Ok(None),
            "the task's sender should be dropped with its runtime"
        );
    }
}
