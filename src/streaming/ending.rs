//! What reached the caller of a streamed answer, reported once when the stream ends, however it
//! ends: whole, cut, or dropped by a writer whose caller went away.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use super::{BodyStream, Cut};

/// How a streamed body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// Body bytes handed on.
    pub bytes: u64,
    /// Why it ended early, if it did; `None` for a body sent whole.
    pub cut: Option<Cut>,
    /// Whether the writer stopped taking it (the caller went away) before it ended.
    pub abandoned: bool,
}

/// `stream`, counted, with `report` called once with how it ended: at its end, at a cut, or
/// when it is dropped unfinished.
pub fn reported(stream: BodyStream, report: impl FnOnce(Ending) + Send + 'static) -> BodyStream {
    Box::pin(Reported {
        stream,
        bytes: 0,
        report: Some(Box::new(report)),
    })
}

struct Reported {
    stream: BodyStream,
    bytes: u64,
    report: Option<Box<dyn FnOnce(Ending) + Send>>,
}

impl Reported {
    fn end(&mut self, cut: Option<Cut>, abandoned: bool) {
        if let Some(report) = self.report.take() {
            report(Ending {
                bytes: self.bytes,
                cut,
                abandoned,
            });
        }
    }
}

impl Stream for Reported {
    type Item = Result<Bytes, Cut>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.report.is_none() {
            return Poll::Ready(None);
        }
        let polled = self.stream.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => self.bytes += chunk.len() as u64,
            Poll::Ready(Some(Err(cut))) => self.end(Some(cut.clone()), false),
            Poll::Ready(None) => self.end(None, false),
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for Reported {
    fn drop(&mut self) {
        self.end(None, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn reports_once_with_the_bytes_handed_on() {
        let (tx, rx) = std::sync::mpsc::channel();
        let chunks: Vec<Result<Bytes, Cut>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"de")),
            Err(Cut::TooLarge),
        ];
        let mut stream = reported(Box::pin(futures_util::stream::iter(chunks)), move |e| {
            tx.send(e).expect("send");
        });
        while stream.next().await.is_some() {}
        drop(stream);
        let ending = rx.recv().expect("reported");
        assert_eq!(
            ending,
            Ending {
                bytes: 5,
                cut: Some(Cut::TooLarge),
                abandoned: false
            }
        );
        assert!(rx.try_recv().is_err(), "reported once");

        let (tx, rx) = std::sync::mpsc::channel();
        let stream = reported(
            Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from_static(
                b"x",
            ))])),
            move |e| tx.send(e).expect("send"),
        );
        drop(stream);
        assert!(rx.recv().expect("reported").abandoned);
    }
}
