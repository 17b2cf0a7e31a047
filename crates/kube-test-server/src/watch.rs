//! Watches: one JSON event per line, replayed from the history from a resourceVersion (or the
//! current state as ADDED events), then live; 410 Expired as an ERROR event when the history no
//! longer reaches back; bookmarks; transitions across a selector as ADDED/DELETED.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, watch as tokio_watch};
use tokio::time::Instant;

use crate::object;
use crate::registry::ResourceType;
use crate::request::{represent, Query, Repr, DEFAULT_WATCH_TIMEOUT};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::Failure;
use crate::store::{Event, State};
use crate::Shared;

struct Filter {
    rt: ResourceType,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    repr: Repr,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        let view = State::present(&self.rt, obj);
        self.labels.matches(object::labels(&view)) && self.fields.matches(&view)
    }

    fn line(&self, kind: &str, obj: &Value) -> Bytes {
        let obj = State::present(&self.rt, obj);
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": represent(&obj, self.repr)}))
                .unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    /// The line an event becomes for this watch, if any.
    fn event_line(&self, ev: &Event) -> Option<Bytes> {
        if ev.key != self.rt.store_key() {
            return None;
        }
        if self
            .namespace
            .as_ref()
            .is_some_and(|ns| *ns != ev.namespace)
        {
            return None;
        }
        let now = self.matches(&ev.object);
        let before = ev.old.as_ref().map(|o| self.matches(o));
        match (ev.kind, before, now) {
            ("ADDED", _, true) => Some(self.line("ADDED", &ev.object)),
            ("MODIFIED", Some(true), true) => Some(self.line("MODIFIED", &ev.object)),
            ("MODIFIED", Some(false), true) => Some(self.line("ADDED", &ev.object)),
            ("MODIFIED", Some(true), false) => {
                // Leaving the selector: DELETED, carrying the old object at the new version.
                let mut old = ev.old.as_deref().cloned().unwrap_or(Value::Null);
                object::meta_mut(&mut old)
                    .insert("resourceVersion".into(), json!(ev.rv.to_string()));
                Some(self.line("DELETED", &old))
            }
            ("DELETED", _, true) => Some(self.line("DELETED", &ev.object)),
            _ => None,
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let (kind, api_version) = match self.repr {
            Repr::Full => (self.rt.kind.clone(), self.rt.api_version()),
            _ => (
                "PartialObjectMetadata".to_string(),
                "meta.k8s.io/v1".to_string(),
            ),
        };
        let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let mut line = serde_json::to_vec(&json!({
            "type": "BOOKMARK",
            "object": {"kind": kind, "apiVersion": api_version, "metadata": meta},
        }))
        .unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

/// Open a watch; the answer is always 200 once the parameters parse.
pub fn serve(
    shared: Arc<Shared>,
    rt: ResourceType,
    namespace: Option<String>,
    query: &Query,
    repr: Repr,
) -> Result<Response, Failure> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())
        .map_err(Failure::bad_request)?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default(), &rt)
        .map_err(Failure::bad_request)?;
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WATCH_TIMEOUT);
    let bookmarks = matches!(query.get("allowWatchBookmarks"), Some("true"));
    let send_initial = matches!(query.get("sendInitialEvents"), Some("true"));
    let from = query.get("resourceVersion").unwrap_or_default().to_string();
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let filter = Filter {
        rt,
        namespace,
        labels,
        fields,
        repr,
    };
    if repr == Repr::PartialList {
        // A list representation for a watch: the real server answers 200 and closes.
        drop(tx);
        return Ok(stream_response(rx));
    }
    let (first, events, delivered) = match start(&shared, &filter, &from, send_initial)? {
        Start::Expired(line) => {
            tokio::spawn(async move {
                let _ = tx.send(line).await;
            });
            return Ok(stream_response(rx));
        }
        Start::Replay {
            lines,
            events,
            delivered,
        } => (lines, events, delivered),
    };
    let deadline = Instant::now() + timeout;
    let live = Live {
        drops: shared.watch_drops.subscribe(),
        shared,
        filter,
        tx,
        events,
        delivered,
        deadline,
        bookmark_at: (bookmarks && timeout > Duration::from_secs(2))
            .then(|| deadline - Duration::from_secs(2)),
    };
    tokio::spawn(live.run(first));
    Ok(stream_response(rx))
}

/// How a watch begins, decided under one lock with its subscription to what comes after.
enum Start {
    /// The resourceVersion is older than the history reaches: one ERROR event carrying a 410
    /// Expired `Status`, then the end of the stream.
    Expired(Bytes),
    /// The lines to send first (history after the resourceVersion, or the current state as
    /// ADDED events), the subscription, and the resourceVersion the watch has delivered.
    Replay {
        lines: Vec<Bytes>,
        events: broadcast::Receiver<Arc<Event>>,
        delivered: u64,
    },
}

fn start(
    shared: &Shared,
    filter: &Filter,
    from: &str,
    send_initial: bool,
) -> Result<Start, Failure> {
    let mut first: Vec<Bytes> = Vec::new();
    let mut last_line_rv: Option<u64> = None;
    let st = shared.state.lock().expect("state");
    let start: Option<u64> = match from {
        "" | "0" => None,
        rv => match rv.parse::<u64>() {
            Ok(v) => Some(v),
            Err(_) => {
                return Err(Failure::bad_request(format!(
                    "resourceVersion: Invalid value: \"{rv}\": must be a number"
                )))
            }
        },
    };
    match start {
        Some(r) if !send_initial => {
            if r < st.compacted {
                let status = Failure::gone(format!(
                    "too old resource version: {r} ({})",
                    st.compacted + 1
                ));
                let mut line = serde_json::to_vec(&json!({"type": "ERROR", "object": status.body}))
                    .unwrap_or_default();
                line.push(b'\n');
                return Ok(Start::Expired(Bytes::from(line)));
            }
            for ev in st.history.iter().filter(|e| e.rv > r) {
                if let Some(l) = filter.event_line(ev) {
                    first.push(l);
                    last_line_rv = Some(ev.rv);
                }
            }
        }
        _ => {
            for o in st.list(&filter.rt, filter.namespace.as_deref()) {
                if filter.matches(o) {
                    first.push(filter.line("ADDED", o));
                }
            }
            if send_initial {
                first.push(filter.bookmark(st.rv, true));
            }
        }
    }
    let delivered = match start {
        Some(r) if !send_initial => last_line_rv.unwrap_or(r),
        _ => st.rv,
    };
    Ok(Start::Replay {
        lines: first,
        events: st.events.subscribe(),
        delivered,
    })
}

/// A watch once its first lines are decided: what it needs to go on until its deadline, a
/// dropped watch, a watcher falling behind, or the client going away.
struct Live {
    shared: Arc<Shared>,
    filter: Filter,
    tx: mpsc::Sender<Bytes>,
    events: broadcast::Receiver<Arc<Event>>,
    drops: tokio_watch::Receiver<u64>,
    /// The newest resourceVersion the client has seen (a bookmark is sent only past it).
    delivered: u64,
    deadline: Instant,
    /// When the last bookmark is due (about 2 s before the deadline), with bookmarks allowed.
    bookmark_at: Option<Instant>,
}

impl Live {
    async fn run(mut self, first: Vec<Bytes>) {
        for b in first {
            if self.tx.send(b).await.is_err() {
                return;
            }
        }
        let bookmark_at = self.bookmark_at;
        let mut next_bookmark =
            bookmark_at.map(|at| at.min(Instant::now() + Duration::from_secs(60)));
        loop {
            let bookmark_sleep = async {
                match next_bookmark {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Ok(ev) => {
                        if ev.key == self.filter.rt.store_key() {
                            if let Some(line) = self.filter.event_line(&ev) {
                                self.delivered = ev.rv;
                                if self.tx.send(line).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    // A watcher that falls behind is closed; the client resumes or relists.
                    Err(_) => return,
                },
                _ = self.drops.changed() => return,
                _ = tokio::time::sleep_until(self.deadline) => return,
                _ = bookmark_sleep => {
                    if !self.bookmark().await {
                        return;
                    }
                    next_bookmark = bookmark_at.and_then(|last| {
                        let n = Instant::now() + Duration::from_secs(60);
                        if Instant::now() < last { Some(n.min(last)) } else { None }
                    });
                }
                _ = self.tx.closed() => return,
            }
        }
    }

    /// A BOOKMARK if the resource's resourceVersion moved past what was delivered; `false` when
    /// the client went away.
    async fn bookmark(&mut self) -> bool {
        let latest = self
            .shared
            .state
            .lock()
            .expect("state")
            .last_rv
            .get(&self.filter.rt.store_key())
            .copied()
            .unwrap_or(0);
        if latest > self.delivered {
            self.delivered = latest;
            if self
                .tx
                .send(self.filter.bookmark(latest, false))
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    }
}
