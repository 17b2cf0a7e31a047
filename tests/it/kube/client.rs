//! The real `kube::Client` and `kube::runtime` against [`KubeEnv`]: what the controller relies
//! on, asserted as Kubernetes documents it (custom resources with a status subresource, a
//! `Controller` owning Secrets through metadata-only watches, Events, Leases, watches surviving
//! faults, server-side apply conflicts).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ObjectReference, Secret};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Api, Client, CustomResource, CustomResourceExt, Resource, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

use super::harness::{require_fake, wait_for, wait_for_some, within, KubeEnv, PATIENCE};

/// The test custom resource: `widgets.test.gitops-seal.dev`, namespaced, with a status
/// subresource.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "test.gitops-seal.dev",
    version = "v1",
    kind = "Widget",
    plural = "widgets",
    namespaced,
    status = "WidgetStatus"
)]
pub struct WidgetSpec {
    pub size: i64,
    pub colour: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct WidgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_size: Option<i64>,
}

const WIDGET_CRD: &str = "widgets.test.gitops-seal.dev";

/// Apply the Widget CRD (idempotent: a real cluster may already have it) and wait until it is
/// Established.
pub async fn install_widget_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = Widget::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some(WIDGET_CRD));
    within(
        "applying the Widget CRD",
        PATIENCE,
        crds.patch(
            WIDGET_CRD,
            &PatchParams::apply("gitops-seal-tests").force(),
            &Patch::Apply(&crd),
        ),
    )
    .await
    .expect("apply the Widget CRD");
    let established = within(
        "the Widget CRD to become Established",
        PATIENCE,
        await_condition(crds, WIDGET_CRD, conditions::is_crd_established()),
    )
    .await
    .expect("watch the Widget CRD");
    assert!(established.is_some(), "the CRD exists once Established");
}

fn widget(name: &str, size: i64, colour: &str) -> Widget {
    Widget::new(
        name,
        WidgetSpec {
            size,
            colour: colour.to_owned(),
        },
    )
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error (a Status from the server), got {other:?}"),
    }
}

/// kube's `Discovery`, both as it walks group versions and as it reads aggregated discovery,
/// finds the built-in kinds the controller uses and, once a CRD is Established, its new group.
#[tokio::test]
async fn discovery_finds_builtins_and_an_established_crd() {
    use kube::discovery::{verbs, Discovery, Scope};
    let env = KubeEnv::new().await;
    install_widget_crd(&env.client).await;
    for aggregated in [false, true] {
        let d = Discovery::new(env.client.clone());
        let d = within("discovery", PATIENCE, async {
            if aggregated {
                d.run_aggregated().await
            } else {
                d.run().await
            }
        })
        .await
        .unwrap_or_else(|e| panic!("discovery (aggregated: {aggregated}): {e}"));
        for (group, kind, namespaced) in [
            ("", "Secret", true),
            ("", "Namespace", false),
            ("coordination.k8s.io", "Lease", true),
            ("events.k8s.io", "Event", true),
            ("apiextensions.k8s.io", "CustomResourceDefinition", false),
            ("test.gitops-seal.dev", "Widget", true),
        ] {
            let g = d.get(group).unwrap_or_else(|| {
                panic!("group {group:?} not discovered (aggregated: {aggregated})")
            });
            let (ar, caps) = g
                .recommended_kind(kind)
                .unwrap_or_else(|| panic!("{kind} not in {group:?} (aggregated: {aggregated})"));
            assert_eq!(ar.kind, kind);
            assert_eq!(caps.scope == Scope::Namespaced, namespaced, "{kind} scope");
            for verb in [verbs::GET, verbs::LIST, verbs::WATCH, verbs::PATCH] {
                assert!(caps.supports_operation(verb), "{kind} supports {verb}");
            }
        }
        // The status subresource of the CRD's kind is discovered with it.
        let (_, caps) = d
            .get("test.gitops-seal.dev")
            .and_then(|g| g.recommended_kind("Widget"))
            .expect("Widget");
        assert!(
            caps.subresources
                .iter()
                .any(|(sub, _)| sub.plural == "widgets/status" || sub.plural == "status"),
            "Widget's status subresource discovered (aggregated: {aggregated}): {:?}",
            caps.subresources
                .iter()
                .map(|(s, _)| s.plural.clone())
                .collect::<Vec<_>>()
        );
    }
    env.cleanup().await;
}

/// A CRD is created through the API, becomes Established, and its resource is served:
/// create, get, status through `/status` only, spec through the main resource only.
#[tokio::test]
async fn custom_resource_with_status_subresource() {
    let env = KubeEnv::new().await;
    install_widget_crd(&env.client).await;
    let widgets: Api<Widget> = Api::default_namespaced(env.client.clone());

    // Status sent with a create is dropped: the status subresource owns it.
    let mut w = widget("alpha", 3, "red");
    w.status = Some(WidgetStatus {
        phase: Some("Forged".into()),
        observed_size: Some(99),
    });
    let created = within(
        "create",
        PATIENCE,
        widgets.create(&PostParams::default(), &w),
    )
    .await
    .expect("create a Widget");
    assert_eq!(created.spec, w.spec);
    assert!(
        created.status.is_none(),
        "status in a create must be ignored when the status subresource is enabled, got {:?}",
        created.status
    );
    assert_eq!(
        created.metadata.generation,
        Some(1),
        "a new object has generation 1"
    );
    assert!(created.metadata.uid.is_some());
    assert_eq!(
        created.metadata.namespace.as_deref(),
        Some(env.namespace.as_str())
    );

    let got = within("get", PATIENCE, widgets.get("alpha"))
        .await
        .expect("get the Widget");
    assert_eq!(got.spec, w.spec);
    assert_eq!(got.metadata.uid, created.metadata.uid);

    // Server-side apply of the status through /status.
    let status_patch = json!({
        "apiVersion": "test.gitops-seal.dev/v1",
        "kind": "Widget",
        "status": {"phase": "Ready", "observed_size": 3},
    });
    let patched = within(
        "patch_status",
        PATIENCE,
        widgets.patch_status(
            "alpha",
            &PatchParams::apply("widget-status").force(),
            &Patch::Apply(&status_patch),
        ),
    )
    .await
    .expect("apply the Widget's status");
    assert_eq!(
        patched.status,
        Some(WidgetStatus {
            phase: Some("Ready".into()),
            observed_size: Some(3)
        })
    );
    assert_eq!(patched.spec, w.spec, "a status write leaves the spec alone");
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "status changes do not bump metadata.generation"
    );
    let status_manager = patched
        .metadata
        .managed_fields
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|m| m.manager.as_deref() == Some("widget-status"))
        .unwrap_or_else(|| {
            panic!(
                "managedFields names the status applier: {:?}",
                patched.metadata.managed_fields
            )
        });
    assert_eq!(status_manager.operation.as_deref(), Some("Apply"));
    assert_eq!(status_manager.subresource.as_deref(), Some("status"));

    // A spec change sent to /status is ignored.
    let sneaky = within(
        "merge patch of spec through /status",
        PATIENCE,
        widgets.patch_status(
            "alpha",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 1000}, "status": {"phase": "Sneaky"}})),
        ),
    )
    .await
    .expect("merge-patch the Widget's status");
    assert_eq!(
        sneaky.spec.size, 3,
        "/status must ignore changes to the spec"
    );
    assert_eq!(
        sneaky.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Sneaky")
    );

    // A status change sent to the main resource is ignored; the spec change lands and bumps
    // the generation.
    let main = within(
        "merge patch of the main resource",
        PATIENCE,
        widgets.patch(
            "alpha",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 5}, "status": {"phase": "Hacked"}})),
        ),
    )
    .await
    .expect("merge-patch the Widget");
    assert_eq!(main.spec.size, 5);
    assert_eq!(
        main.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Sneaky"),
        "the main resource must ignore changes to the status"
    );
    assert_eq!(
        main.metadata.generation,
        Some(2),
        "a spec change bumps metadata.generation"
    );

    // So does a replace (PUT) carrying a different status.
    let mut replace = main.clone();
    replace.spec.colour = "blue".into();
    replace.status = Some(WidgetStatus::default());
    let replaced = within(
        "replace",
        PATIENCE,
        widgets.replace("alpha", &PostParams::default(), &replace),
    )
    .await
    .expect("replace the Widget");
    assert_eq!(replaced.spec.colour, "blue");
    assert_eq!(
        replaced.status, main.status,
        "PUT on the main resource ignores the status"
    );
    assert_eq!(replaced.metadata.generation, Some(3));

    env.cleanup().await;
}

struct Ctx {
    client: Client,
    reconciles: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ReconcileError(#[from] kube::Error);

fn owned_secret_name(w: &Widget) -> String {
    format!("{}-secret", w.name_any())
}

async fn reconcile_widget(w: Arc<Widget>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    ctx.reconciles.fetch_add(1, Ordering::SeqCst);
    let ns = w.namespace().expect("Widgets are namespaced");
    let owner: OwnerReference = w
        .controller_owner_ref(&())
        .expect("a stored Widget has a uid");
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": owned_secret_name(&w), "ownerReferences": [owner]},
        "type": "Opaque",
        "stringData": {"size": w.spec.size.to_string(), "colour": w.spec.colour},
    });
    Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .patch(
            &owned_secret_name(&w),
            &PatchParams::apply("test-ctl").force(),
            &Patch::Apply(&secret),
        )
        .await?;
    Ok(Action::await_change())
}

fn reconcile_failed(_: Arc<Widget>, err: &ReconcileError, _: Arc<Ctx>) -> Action {
    eprintln!("reconcile failed: {err}");
    Action::requeue(Duration::from_millis(200))
}

fn secret_value(s: &Secret, key: &str) -> Option<String> {
    s.data
        .as_ref()?
        .get(key)
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

/// Wait until the Secret exists with `size`; return it.
async fn await_secret(secrets: &Api<Secret>, name: &str, size: i64, what: &str) -> Secret {
    wait_for_some(what, PATIENCE, || async {
        let s = secrets.get_opt(name).await.ok()??;
        (secret_value(&s, "size") == Some(size.to_string())).then_some(s)
    })
    .await
}

/// `kube::runtime::Controller` over Widgets, owning Secrets through a metadata-only watch
/// (`Controller::owns` watches children with `metadata_watcher`, i.e. `Accept:
/// application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1`): the owned Secret appears with
/// a controller ownerReference, out-of-band deletion and edits are repaired, and a spec change
/// re-reconciles. (Nothing here relies on garbage collection.)
#[tokio::test]
async fn controller_owns_secrets_through_metadata_watch() {
    let env = KubeEnv::new().await;
    install_widget_crd(&env.client).await;
    let widgets: Api<Widget> = Api::default_namespaced(env.client.clone());
    let secrets: Api<Secret> = Api::default_namespaced(env.client.clone());

    // The metadata-only representation the controller's child watch relies on.
    let meta_list = within(
        "list_metadata",
        PATIENCE,
        secrets.list_metadata(&ListParams::default()),
    )
    .await
    .expect("list Secrets' metadata");
    assert_eq!(meta_list.types.kind, "PartialObjectMetadataList");
    assert_eq!(meta_list.types.api_version, "meta.k8s.io/v1");

    let ctx = Arc::new(Ctx {
        client: env.client.clone(),
        reconciles: AtomicUsize::new(0),
    });
    let controller = Controller::new(widgets.clone(), watcher::Config::default())
        .owns(secrets.clone(), watcher::Config::default())
        .run(reconcile_widget, reconcile_failed, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let controller = tokio::spawn(controller);

    let created = within(
        "create Widget",
        PATIENCE,
        widgets.create(&PostParams::default(), &widget("gizmo", 1, "green")),
    )
    .await
    .expect("create a Widget");
    let secret = await_secret(
        &secrets,
        "gizmo-secret",
        1,
        "the controller to create gizmo-secret",
    )
    .await;
    assert_eq!(secret_value(&secret, "colour").as_deref(), Some("green"));
    let owners = secret.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1, "one ownerReference: {owners:?}");
    assert_eq!(owners[0].uid, created.metadata.uid.clone().unwrap());
    assert_eq!(owners[0].kind, "Widget");
    assert_eq!(owners[0].api_version, "test.gitops-seal.dev/v1");
    assert_eq!(owners[0].name, "gizmo");
    assert_eq!(owners[0].controller, Some(true));
    assert!(
        secret
            .metadata
            .managed_fields
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|m| m.manager.as_deref() == Some("test-ctl")
                && m.operation.as_deref() == Some("Apply")),
        "the Secret is managed by test-ctl: {:?}",
        secret.metadata.managed_fields
    );

    // The owned Secret seen through a metadata watch of the kind the controller uses.
    let meta = within(
        "get_metadata",
        PATIENCE,
        secrets.get_metadata("gizmo-secret"),
    )
    .await
    .expect("get the Secret's metadata");
    assert_eq!(
        meta.types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
    assert_eq!(
        meta.metadata.owner_references.as_deref().map(<[_]>::len),
        Some(1)
    );

    // A metadata-only watch, as the controller's child watch makes, delivers the Secret as
    // PartialObjectMetadata.
    // (kube 5 spells that watch `watcher` over `Api<PartialObjectMeta<K>>`; `Controller::owns`
    // still goes through the deprecated `metadata_watcher`, the same requests.)
    let secret_metadata: Api<PartialObjectMeta<Secret>> =
        Api::default_namespaced(env.client.clone());
    let mut meta_events = Box::pin(
        watcher(secret_metadata, watcher::Config::default())
            .default_backoff()
            .applied_objects(),
    );
    let first = within("a metadata watch event", PATIENCE, meta_events.next())
        .await
        .expect("the metadata watch delivers")
        .expect("the metadata watch works");
    assert_eq!(first.name_any(), "gizmo-secret");
    assert_eq!(
        first.types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
    assert_eq!(
        first.types.as_ref().map(|t| t.api_version.as_str()),
        Some("meta.k8s.io/v1")
    );
    assert_eq!(first.metadata.uid, secret.metadata.uid);
    drop(meta_events); // Close the watch.

    // Deleted out of band: the Delete event of the child watch re-triggers the owner.
    let first_uid = secret.metadata.uid.clone();
    within(
        "delete Secret",
        PATIENCE,
        secrets.delete("gizmo-secret", &DeleteParams::default()),
    )
    .await
    .expect("delete the owned Secret");
    let restored = wait_for_some(
        "the controller to recreate gizmo-secret",
        PATIENCE,
        || async {
            let s = secrets.get_opt("gizmo-secret").await.ok()??;
            (s.metadata.uid != first_uid).then_some(s)
        },
    )
    .await;
    assert_eq!(secret_value(&restored, "size").as_deref(), Some("1"));

    // Changed out of band (another field manager): the controller force-applies it back.
    let reconciles_before = ctx.reconciles.load(Ordering::SeqCst);
    within(
        "tamper with Secret",
        PATIENCE,
        secrets.patch(
            "gizmo-secret",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"size": "666"}})),
        ),
    )
    .await
    .expect("tamper with the owned Secret");
    wait_for("a reconcile after the Secret changed", PATIENCE, || async {
        ctx.reconciles.load(Ordering::SeqCst) > reconciles_before
    })
    .await;
    await_secret(
        &secrets,
        "gizmo-secret",
        1,
        "the controller to repair gizmo-secret's drift",
    )
    .await;

    // A spec change re-reconciles.
    within(
        "patch Widget spec",
        PATIENCE,
        widgets.patch(
            "gizmo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2, "colour": "teal"}})),
        ),
    )
    .await
    .expect("change the Widget's spec");
    let updated = await_secret(
        &secrets,
        "gizmo-secret",
        2,
        "the Secret to follow the new spec",
    )
    .await;
    assert_eq!(secret_value(&updated, "colour").as_deref(), Some("teal"));

    controller.abort();
    env.cleanup().await;
}

/// `kube::runtime::events::Recorder` (events.k8s.io/v1): a repeated event becomes a series
/// on the first one; a `regarding.name` field selector finds exactly the object's events.
#[tokio::test]
async fn recorder_events_series_and_field_selector() {
    let env = KubeEnv::new().await;
    let configmaps: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    let mut target = ConfigMap::default();
    target.metadata.name = Some("evented".into());
    let target = within(
        "create ConfigMap",
        PATIENCE,
        configmaps.create(&PostParams::default(), &target),
    )
    .await
    .expect("create the ConfigMap");
    let mut other = ConfigMap::default();
    other.metadata.name = Some("bystander".into());
    let other = within(
        "create ConfigMap",
        PATIENCE,
        configmaps.create(&PostParams::default(), &other),
    )
    .await
    .expect("create the other ConfigMap");

    let reporter = Reporter {
        controller: "gitops-seal-tests".into(),
        instance: Some("tests-0".into()),
    };
    let recorder = Recorder::new(env.client.clone(), reporter);
    let reference: ObjectReference = target.object_ref(&());
    let event = Event {
        type_: EventType::Warning,
        reason: "SealBroken".into(),
        note: Some("cannot open value `password`".into()),
        action: "Unseal".into(),
        secondary: None,
    };
    within("publish", PATIENCE, recorder.publish(&event, &reference))
        .await
        .expect("publish the first event");
    within("publish", PATIENCE, recorder.publish(&event, &reference))
        .await
        .expect("publish the same event again (a series update)");
    within(
        "publish",
        PATIENCE,
        recorder.publish(
            &Event {
                type_: EventType::Normal,
                reason: "Unrelated".into(),
                note: None,
                action: "Look".into(),
                secondary: None,
            },
            &other.object_ref(&()),
        ),
    )
    .await
    .expect("publish an event about another object");

    let events: Api<K8sEvent> = Api::default_namespaced(env.client.clone());
    let listed = within(
        "list events",
        PATIENCE,
        events.list(&ListParams::default().fields("regarding.name=evented")),
    )
    .await
    .expect("list events.k8s.io Events by regarding.name");
    assert_eq!(
        listed.items.len(),
        1,
        "the repeat must update the first Event, not add one; and the selector must keep out \
         the other object's event: {:#?}",
        listed.items
    );
    let e = &listed.items[0];
    assert_eq!(e.reason.as_deref(), Some("SealBroken"));
    assert_eq!(e.action.as_deref(), Some("Unseal"));
    assert_eq!(e.note.as_deref(), Some("cannot open value `password`"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.reporting_controller.as_deref(), Some("gitops-seal-tests"));
    assert_eq!(e.reporting_instance.as_deref(), Some("tests-0"));
    assert!(
        e.event_time.is_some(),
        "events.k8s.io/v1 requires eventTime"
    );
    let regarding = e.regarding.as_ref().expect("regarding");
    assert_eq!(regarding.kind.as_deref(), Some("ConfigMap"));
    assert_eq!(regarding.name.as_deref(), Some("evented"));
    assert_eq!(regarding.uid, target.metadata.uid);
    assert_eq!(regarding.namespace.as_deref(), Some(env.namespace.as_str()));
    let series = e
        .series
        .as_ref()
        .expect("the repeat is recorded as a series");
    assert_eq!(series.count, 2);
    assert!(series.last_observed_time.0 >= e.event_time.as_ref().unwrap().0);

    // Both events are there without the selector; the other one is selected by its own name.
    let all = within("list events", PATIENCE, events.list(&ListParams::default()))
        .await
        .expect("list all events");
    assert_eq!(all.items.len(), 2, "{:#?}", all.items);
    let by_other = within(
        "list events",
        PATIENCE,
        events.list(&ListParams::default().fields("regarding.name=bystander,reason=Unrelated")),
    )
    .await
    .expect("list events by regarding.name and reason");
    assert_eq!(by_other.items.len(), 1, "{:#?}", by_other.items);
    assert_eq!(by_other.items[0].reason.as_deref(), Some("Unrelated"));

    env.cleanup().await;
}

async fn lease_holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases.get(name).await.ok()?.spec?.holder_identity
}

/// kube-lease-manager over the Lease API: one manager holds the lease and renews it, a second
/// cannot take it meanwhile, and takes it over once the first releases it.
#[tokio::test]
async fn lease_is_exclusive_and_handed_over() {
    let env = KubeEnv::new().await;
    let leases: Api<Lease> = Api::default_namespaced(env.client.clone());
    // Renewed `GRACE` seconds before it runs out: slack for a loaded test machine.
    const DURATION: u64 = 4;
    const GRACE: u64 = 2;
    let manager = |identity: &str| {
        LeaseManagerBuilder::new(env.client.clone(), "gitops-seal-leader")
            .with_namespace(&env.namespace)
            .with_identity(identity)
            .with_duration(DURATION)
            .with_grace(GRACE)
            .build()
    };

    let first = within("build manager", PATIENCE, manager("alpha"))
        .await
        .expect("first manager");
    let (mut first_rx, first_task) = first.watch().await;
    within(
        "alpha to acquire the lease",
        PATIENCE,
        first_rx.wait_for(|leader| *leader),
    )
    .await
    .map(|_| ())
    .expect("alpha's lease channel");
    assert_eq!(
        lease_holder(&leases, "gitops-seal-leader").await.as_deref(),
        Some("alpha")
    );
    let before = within("get lease", PATIENCE, leases.get("gitops-seal-leader"))
        .await
        .expect("get the Lease")
        .spec
        .expect("Lease spec");
    assert_eq!(before.lease_duration_seconds, Some(DURATION as i32));

    let second = within("build manager", PATIENCE, manager("beta"))
        .await
        .expect("second manager");
    let (mut second_rx, second_task) = second.watch().await;
    // For longer than the lease lasts, alpha keeps renewing and beta stays out. (A bounded
    // observation window, not a synchronisation sleep: the assertion is that nothing happens.)
    let took = tokio::time::timeout(
        Duration::from_secs(DURATION + 2),
        second_rx.wait_for(|leader| *leader),
    )
    .await
    .map(|r| r.map(|_| ()));
    assert!(
        took.is_err(),
        "beta must not acquire the lease while alpha renews it"
    );
    let during = within("get lease", PATIENCE, leases.get("gitops-seal-leader"))
        .await
        .expect("get the Lease")
        .spec
        .expect("Lease spec");
    assert_eq!(during.holder_identity.as_deref(), Some("alpha"));
    assert!(
        during.renew_time.as_ref().map(|t| t.0) > before.renew_time.as_ref().map(|t| t.0),
        "alpha renewed the lease: {:?} then {:?}",
        before.renew_time,
        during.renew_time
    );
    assert!(*first_rx.borrow(), "alpha still leads");

    // alpha stops: dropping its channel makes its task release the lease and end.
    drop(first_rx);
    within("alpha's manager to stop", PATIENCE, first_task)
        .await
        .expect("alpha's task")
        .expect("alpha releases the lease cleanly");
    within(
        "beta to take the lease over",
        PATIENCE,
        second_rx.wait_for(|leader| *leader),
    )
    .await
    .map(|_| ())
    .expect("beta's lease channel");
    wait_for("the Lease to name beta", PATIENCE, || async {
        lease_holder(&leases, "gitops-seal-leader").await.as_deref() == Some("beta")
    })
    .await;

    drop(second_rx);
    within("beta's manager to stop", PATIENCE, second_task)
        .await
        .expect("beta's task")
        .expect("beta releases the lease cleanly");
    env.cleanup().await;
}

/// What a test's watcher saw, in order.
#[derive(Debug)]
enum Seen {
    Init,
    Applied(String),
    Error(String),
}

/// Wait until the watcher reports `name` applied; return the number of (re)lists seen meanwhile.
async fn await_applied(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    name: &str,
    what: &str,
) -> (usize, Vec<String>) {
    let mut inits = 0;
    let mut errors = Vec::new();
    within(what, PATIENCE, async {
        loop {
            match rx.recv().await.expect("the watcher task ended") {
                Seen::Init => inits += 1,
                Seen::Applied(n) if n == name => return,
                Seen::Applied(_) => {}
                Seen::Error(e) => errors.push(e),
            }
        }
    })
    .await;
    (inits, errors)
}

async fn create_configmap(api: &Api<ConfigMap>, name: &str) {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm.data = Some(BTreeMap::from([("k".to_owned(), name.to_owned())]));
    within(
        "create ConfigMap",
        PATIENCE,
        api.create(&PostParams::default(), &cm),
    )
    .await
    .unwrap_or_else(|e| panic!("create ConfigMap {name}: {e}"));
}

/// A `kube::runtime::watcher` with the default backoff keeps delivering through dropped
/// watches (resumes from its resourceVersion, no relist), expired history (410 Gone → relist)
/// and an API server restart.
#[tokio::test]
async fn watcher_survives_dropped_expired_and_restarted_watches() {
    let env = KubeEnv::new().await;
    let server = require_fake!(env);
    let configmaps: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stream = watcher(configmaps.clone(), watcher::Config::default()).default_backoff();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            let seen = match item {
                Ok(watcher::Event::Init) => Seen::Init,
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    Seen::Applied(o.name_any())
                }
                Ok(_) => continue,
                Err(e) => Seen::Error(e.to_string()),
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
    });

    create_configmap(&configmaps, "one").await;
    let (inits, errors) = await_applied(&mut rx, "one", "the watcher to see `one`").await;
    assert_eq!(inits, 1, "one initial list");
    assert!(errors.is_empty(), "{errors:?}");

    server.drop_watches();
    create_configmap(&configmaps, "two").await;
    let (inits, errors) = await_applied(
        &mut rx,
        "two",
        "the watcher to see `two` after drop_watches",
    )
    .await;
    assert_eq!(
        inits, 0,
        "a dropped watch resumes from its resourceVersion without a relist"
    );
    assert!(errors.is_empty(), "{errors:?}");

    // A write elsewhere moves the server's resourceVersion past the watcher's last one, so
    // once the history is forgotten, resuming from it is 410 Expired. (Without it the watcher's
    // resourceVersion is the compaction point itself, from which watching is still valid.)
    let secrets: Api<Secret> = Api::default_namespaced(env.client.clone());
    let mut unrelated = Secret::default();
    unrelated.metadata.name = Some("unrelated".into());
    within(
        "create Secret",
        PATIENCE,
        secrets.create(&PostParams::default(), &unrelated),
    )
    .await
    .expect("create an unrelated Secret");
    server.expire_watches();
    create_configmap(&configmaps, "three").await;
    let (inits, errors) = await_applied(
        &mut rx,
        "three",
        "the watcher to see `three` after expire_watches",
    )
    .await;
    assert_eq!(
        inits, 1,
        "an expired resourceVersion (410) makes the watcher list again"
    );
    assert!(
        errors.iter().all(|e| e.contains("410")
            || e.to_lowercase().contains("expired")
            || e.contains("Gone")),
        "only the 410 may surface: {errors:?}"
    );

    server.restart();
    create_configmap(&configmaps, "four").await;
    let (_, errors) =
        await_applied(&mut rx, "four", "the watcher to see `four` after restart").await;
    assert!(errors.is_empty(), "{errors:?}");

    task.abort();
    env.cleanup().await;
}

/// Injected 503s with Retry-After reach a client without retries as `Error::Api` with code
/// 503; the test's own third attempt succeeds. kube's default client (with its built-in
/// retry) gets through the same faults without the caller seeing them.
#[tokio::test]
async fn unavailable_then_recovers() {
    let env = KubeEnv::new().await;
    let server = require_fake!(env);
    let plain = env.client_without_retries();
    let configmaps: Api<ConfigMap> = Api::namespaced(plain, &env.namespace);
    create_configmap(&configmaps, "steady").await;
    let path = format!("/api/v1/namespaces/{}/configmaps", env.namespace);

    server.fail_next(&path, 2, 503, Some(1));
    for attempt in 1..=2 {
        let status = api_error(within("get", PATIENCE, configmaps.get("steady")).await);
        assert_eq!(status.code, 503, "attempt {attempt}: {status:?}");
        assert_eq!(
            status.reason, "ServiceUnavailable",
            "attempt {attempt}: {status:?}"
        );
    }
    let cm = within("get", PATIENCE, configmaps.get("steady"))
        .await
        .expect("the third attempt succeeds");
    assert_eq!(cm.name_any(), "steady");

    // The default client retries 503 by itself (honouring Retry-After).
    let retrying: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    server.fail_next(&path, 2, 503, Some(1));
    let cm = within("get with kube's retry", PATIENCE, retrying.get("steady"))
        .await
        .expect("kube's built-in retry gets through two 503s");
    assert_eq!(cm.name_any(), "steady");
    // Both faults were consumed by the retries.
    let again = within("get", PATIENCE, configmaps.get("steady")).await;
    assert!(again.is_ok(), "no fault left over: {again:?}");

    env.cleanup().await;
}

/// A 429 with Retry-After is surfaced (without client retries) as `Error::Api` with code 429
/// and reason TooManyRequests, with the Retry-After in the Status details.
#[tokio::test]
async fn too_many_requests_is_an_api_error() {
    let env = KubeEnv::new().await;
    let server = require_fake!(env);
    let configmaps: Api<ConfigMap> = Api::namespaced(env.client_without_retries(), &env.namespace);
    let path = format!("/api/v1/namespaces/{}/configmaps", env.namespace);
    server.fail_next_method(Some(hyper::Method::POST), &path, 1, 429, Some(2));

    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("throttled".into());
    let status = api_error(
        within(
            "create",
            PATIENCE,
            configmaps.create(&PostParams::default(), &cm),
        )
        .await,
    );
    assert_eq!(status.code, 429, "{status:?}");
    assert_eq!(status.reason, "TooManyRequests", "{status:?}");
    assert_eq!(
        status.details.as_ref().map(|d| d.retry_after_seconds),
        Some(2),
        "the Status carries retryAfterSeconds: {status:?}"
    );
    // The fault was for POST only and is used up: reads work, and the retried create too.
    let list = within("list", PATIENCE, configmaps.list(&ListParams::default()))
        .await
        .expect("reads are unaffected");
    assert!(list.items.is_empty());
    within(
        "create",
        PATIENCE,
        configmaps.create(&PostParams::default(), &cm),
    )
    .await
    .expect("the retried create succeeds");

    env.cleanup().await;
}

/// Server-side apply through kube: a second field manager changing a field another owns gets
/// 409 Conflict (naming the other manager and the field) unless it forces, and then owns it.
#[tokio::test]
async fn server_side_apply_conflicts() {
    let env = KubeEnv::new().await;
    let configmaps: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    let apply = |value: &str| {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "contested"},
            "data": {"key": value},
        })
    };
    within(
        "apply as alpha",
        PATIENCE,
        configmaps.patch(
            "contested",
            &PatchParams::apply("alpha"),
            &Patch::Apply(apply("a")),
        ),
    )
    .await
    .expect("alpha creates the ConfigMap by applying");

    let status = api_error(
        within(
            "apply as beta",
            PATIENCE,
            configmaps.patch(
                "contested",
                &PatchParams::apply("beta"),
                &Patch::Apply(apply("b")),
            ),
        )
        .await,
    );
    assert_eq!(status.code, 409, "{status:?}");
    assert_eq!(status.reason, "Conflict", "{status:?}");
    assert!(
        status.message.contains("alpha") && status.message.contains(".data.key"),
        "the message names the manager and the field: {:?}",
        status.message
    );
    let unchanged = configmaps.get("contested").await.expect("get");
    assert_eq!(
        unchanged.data.unwrap()["key"],
        "a",
        "a conflicting apply changes nothing"
    );

    // The same value is no conflict: both managers share the field.
    within(
        "apply as gamma",
        PATIENCE,
        configmaps.patch(
            "contested",
            &PatchParams::apply("gamma"),
            &Patch::Apply(apply("a")),
        ),
    )
    .await
    .expect("applying the same value does not conflict");

    let forced = within(
        "force-apply as beta",
        PATIENCE,
        configmaps.patch(
            "contested",
            &PatchParams::apply("beta").force(),
            &Patch::Apply(apply("b")),
        ),
    )
    .await
    .expect("beta forces");
    assert_eq!(forced.data.as_ref().unwrap()["key"], "b");
    let owns_key = |manager: &str| {
        forced
            .metadata
            .managed_fields
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|m| m.manager.as_deref() == Some(manager))
            .any(|m| {
                m.fields_v1
                    .as_ref()
                    .is_some_and(|f| f.0.pointer("/f:data/f:key").is_some())
            })
    };
    assert!(
        owns_key("beta"),
        "beta owns .data.key: {:?}",
        forced.metadata.managed_fields
    );
    assert!(
        !owns_key("alpha"),
        "alpha lost .data.key: {:?}",
        forced.metadata.managed_fields
    );
    assert!(
        !owns_key("gamma"),
        "gamma lost .data.key: {:?}",
        forced.metadata.managed_fields
    );

    // Now alpha, without force, conflicts with beta.
    let status = api_error(
        within(
            "apply as alpha again",
            PATIENCE,
            configmaps.patch(
                "contested",
                &PatchParams::apply("alpha"),
                &Patch::Apply(apply("a")),
            ),
        )
        .await,
    );
    assert_eq!(status.code, 409, "{status:?}");
    assert_eq!(status.reason, "Conflict", "{status:?}");
    assert!(status.message.contains("beta"), "{:?}", status.message);

    env.cleanup().await;
}

/// The harness itself: each test's namespace exists, is the client's default, is its own, and
/// is deleted by `cleanup` (the test API server, which does no namespace finalisation, leaves it
/// Terminating; a real cluster may already have removed it).
#[tokio::test]
async fn harness_gives_each_test_its_own_namespace() {
    let mut env = KubeEnv::new().await;
    let other = KubeEnv::new().await;
    assert_ne!(env.namespace, other.namespace);
    assert!(
        env.namespace
            .starts_with("t-harness-gives-each-test-its-own-namesp"),
        "{}",
        env.namespace
    );
    assert!(env.namespace.len() <= 63);
    assert_eq!(env.client.default_namespace(), env.namespace);

    let configmaps: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    create_configmap(&configmaps, "mine").await;
    let mine = configmaps.get("mine").await.expect("get");
    assert_eq!(
        mine.metadata.namespace.as_deref(),
        Some(env.namespace.as_str())
    );

    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let ns = namespaces
        .get(&env.namespace)
        .await
        .expect("the namespace exists");
    assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Active"));

    env.delete_namespace().await;
    let (name, client) = (env.namespace.clone(), env.client.clone());
    match within(
        "get namespace",
        PATIENCE,
        Api::<Namespace>::all(client).get_opt(&name),
    )
    .await
    .expect("get the namespace")
    {
        None => {}
        Some(ns) => {
            assert!(ns.metadata.deletion_timestamp.is_some(), "{ns:?}");
            assert_eq!(
                ns.status.and_then(|s| s.phase).as_deref(),
                Some("Terminating")
            );
        }
    }
    other.cleanup().await;
}
