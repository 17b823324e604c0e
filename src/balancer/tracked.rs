//! A target's response body on its way to the client, holding the request's in-flight guard:
//! the request counts as in flight until its body has been sent, its outcome (status and
//! time to the last byte) is recorded then, and a target that finished draining cuts it off.

use super::{InFlight, Outcome};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::Instant;
use tokio_util::sync::WaitForCancellationFutureOwned;

/// Error type of a tracked body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// See the module documentation.
pub struct Tracked {
    inner: Incoming,
    guard: Option<InFlight>,
    status: u16,
    started: Instant,
    /// Created when the body first has to wait: short bodies never need it.
    drained: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

impl Tracked {
    /// Wraps the body of a response with `status`, to a request sent at `started`.
    pub fn new(inner: Incoming, guard: InFlight, status: u16, started: Instant) -> Tracked {
        Tracked {
            inner,
            guard: Some(guard),
            status,
            started,
            drained: None,
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        if let Some(g) = self.guard.take() {
            g.finish(outcome);
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_frame(cx);
        if poll.is_pending()
            && let Some(guard) = &this.guard
        {
            let drained = this
                .drained
                .get_or_insert_with(|| Box::pin(guard.drained().cancelled_owned()));
            if drained.as_mut().poll(cx).is_ready() {
                let elapsed = this.started.elapsed();
                this.finish(Outcome::Failed { elapsed });
                return Poll::Ready(Some(Err("target deregistered: draining ended".into())));
            }
        }
        match poll {
            Poll::Ready(None) => {
                let (status, elapsed) = (this.status, this.started.elapsed());
                this.finish(Outcome::Response { status, elapsed });
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                let elapsed = this.started.elapsed();
                this.finish(Outcome::Failed { elapsed });
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // An empty body may never be polled; a body dropped half-way is the client leaving,
        // which says nothing about the target (the guard only counts down).
        if self.inner.is_end_stream() {
            let (status, elapsed) = (self.status, self.started.elapsed());
            self.finish(Outcome::Response { status, elapsed });
        }
    }
}
