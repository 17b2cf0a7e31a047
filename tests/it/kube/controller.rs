//! The controller (`gitops_seal::controller::run`, in process) against [`KubeEnv`]: issue 12's
//! behaviour, asserted through the API as a user sees it (Secrets, status conditions, Events,
//! the recipients ConfigMap) and by searching everything the server stored and everything the
//! controller logged for the plaintext.
//!
//! Nothing here relies on garbage collection (the test API server does none): the
//! ownerReference is asserted as written, not acted on.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::ByteString;
use kube::api::{
    DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams,
};
use kube::discovery::{verbs, Discovery};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use gitops_seal::adapters::kube::{SealedSecret, SealedSecretResourceSpec};
use gitops_seal::controller::keys::{
    IDENTITY_KEY, IDENTITY_LABEL, RECIPIENTS_CONFIGMAP, RECIPIENTS_KEY,
};
use gitops_seal::controller::{self, Settings};
use gitops_seal::core::keys::parse_recipients_file;
use gitops_seal::core::{self as core, Identity, PlainSecret, Recipient, Scope};

use super::harness::{
    install_crd, random_suffix, require_fake, wait_for, wait_for_some, within, KubeEnv, PATIENCE,
};

// ---------------------------------------------------------------------------------------------
// Captured logs: one subscriber for the process, writing into a buffer every test searches.

fn log_buffer() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            // The production filter's caps (kube_client's DEBUG line for a refused request
            // prints the server's text) over everything else at its most verbose.
            .with_env_filter(gitops_seal::adapters::kube::capped_log_filter(
                tracing_subscriber::EnvFilter::new(
                    "gitops_seal=trace,kube_runtime=debug,kube_client=debug",
                ),
            ))
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .try_init();
    });
}

fn logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().expect("logs")).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Setup.

/// Settings for a test: keys and SealedSecrets in the test's namespace, short retries.
pub(super) fn settings(env: &KubeEnv) -> Settings {
    let mut s = Settings::new(env.namespace.clone());
    s.watch_namespaces = vec![env.namespace.clone()];
    s.retry_base = Duration::from_millis(100);
    s.retry_max = Duration::from_secs(2);
    s.conflict_retry = Duration::from_millis(300);
    s.instance = Some("tests".into());
    s
}

/// The controller running in process; stopped (and awaited) by [`Running::stop`] or on drop.
pub(super) struct Running {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), controller::ControllerError>>>,
}

impl Running {
    pub(super) async fn stop(mut self) {
        let _ = self.shutdown.take().map(|tx| tx.send(()));
        if let Some(task) = self.task.take() {
            within("the controller to stop", PATIENCE, task)
                .await
                .expect("controller task")
                .expect("controller ran without error");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

pub(super) fn start(client: &Client, settings: Settings) -> Running {
    capture_logs();
    let (tx, rx) = oneshot::channel::<()>();
    let client = client.clone();
    let task = tokio::spawn(async move {
        controller::run(client, settings, async {
            let _ = rx.await;
        })
        .await
    });
    Running {
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// The controller's recipients, from its ConfigMap, once published.
pub(super) async fn controller_recipients(env: &KubeEnv) -> Vec<Recipient> {
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    wait_for_some("the recipients ConfigMap", PATIENCE, || async {
        let cm = cms.get_opt(RECIPIENTS_CONFIGMAP).await.ok()??;
        let text = cm.data?.get(RECIPIENTS_KEY)?.clone();
        let list = parse_recipients_file(&text).ok()?;
        (!list.is_empty()).then_some(list)
    })
    .await
}

/// A unique plaintext value (so a search for it finds only this test's copies).
pub(super) fn unique_value(label: &str) -> String {
    format!("{label}-value-{}-{}", random_suffix(), random_suffix())
}

pub(super) struct Template<'a> {
    secret_type: &'a str,
    immutable: Option<bool>,
    labels: &'a [(&'a str, &'a str)],
    annotations: &'a [(&'a str, &'a str)],
}

pub(super) const OPAQUE: Template<'static> = Template {
    secret_type: "Opaque",
    immutable: None,
    labels: &[],
    annotations: &[],
};

const IMMUTABLE: Template<'static> = Template {
    immutable: Some(true),
    ..OPAQUE
};

/// A SealedSecret sealed with the core for `recipients`, bound to `bind_namespace`/`name`.
pub(super) fn sealed(
    name: &str,
    bind_namespace: &str,
    recipients: &[Recipient],
    values: &[(&str, &[u8])],
    template: &Template<'_>,
    scope: Scope,
) -> SealedSecret {
    let plain = PlainSecret {
        name: name.into(),
        namespace: Some(bind_namespace.into()),
        secret_type: template.secret_type.into(),
        immutable: template.immutable,
        labels: template
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: template
            .annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        data: values
            .iter()
            .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_vec())))
            .collect(),
    };
    let s = core::SealedSecret::seal(&plain, recipients, scope, None, None).expect("seal");
    let spec: SealedSecretResourceSpec = serde_json::from_value(s.to_value()["spec"].clone())
        .expect("the core's spec is the resource's");
    SealedSecret::new(name, spec)
}

pub(super) async fn create_sealed(api: &Api<SealedSecret>, obj: &SealedSecret) -> SealedSecret {
    within(
        "create SealedSecret",
        PATIENCE,
        api.create(&PostParams::default(), obj),
    )
    .await
    .expect("create the SealedSecret")
}

/// Replace the spec of SealedSecret `name` (a user re-applying it).
pub(super) async fn replace_spec(api: &Api<SealedSecret>, name: &str, obj: &SealedSecret) {
    within(
        "patch SealedSecret spec",
        PATIENCE,
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": obj.spec})),
        ),
    )
    .await
    .expect("patch the SealedSecret's spec");
}

/// Wait until the Ready condition has `status`/`reason` for the current generation.
pub(super) async fn await_ready(
    api: &Api<SealedSecret>,
    name: &str,
    status: &str,
    reason: &str,
) -> SealedSecret {
    wait_for_some(
        &format!("SealedSecret {name} to be Ready={status} ({reason})"),
        PATIENCE,
        || async {
            let o = api.get_opt(name).await.ok()??;
            let st = o.status.as_ref()?;
            let c = st.conditions.iter().find(|c| c.type_ == "Ready")?;
            (c.status == status
                && c.reason == reason
                && st.observed_generation == o.metadata.generation
                && c.observed_generation == o.metadata.generation)
                .then_some(o.clone())
        },
    )
    .await
}

/// Wait for a Warning Event with `reason` about SealedSecret `name`; returns its note.
pub(super) async fn await_event(env: &KubeEnv, name: &str, reason: &str) -> String {
    let events: Api<K8sEvent> = Api::namespaced(env.client.clone(), &env.namespace);
    wait_for_some(
        &format!("a {reason} event about {name}"),
        PATIENCE,
        || async {
            let list = events
                .list(&ListParams::default().fields(&format!("regarding.name={name}")))
                .await
                .ok()?;
            list.items.into_iter().find_map(|e| {
                (e.reason.as_deref() == Some(reason)
                    && e.type_.as_deref() == Some("Warning")
                    && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("SealedSecret"))
                .then(|| e.note.unwrap_or_default())
            })
        },
    )
    .await
}

fn data_of(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    s.data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

pub(super) async fn await_secret_data(
    secrets: &Api<Secret>,
    name: &str,
    want: &BTreeMap<String, Vec<u8>>,
    what: &str,
) -> Secret {
    wait_for_some(what, PATIENCE, || async {
        let s = secrets.get_opt(name).await.ok()??;
        (data_of(&s) == *want).then_some(s)
    })
    .await
}

pub(super) fn want(values: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
    values
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect()
}

/// Every object of every listable kind the server stores, as JSON text, with the Secrets the
/// controller manages (the one place plaintext belongs) left out.
async fn everything_stored_except_managed_secrets(client: &Client) -> Vec<(String, String)> {
    let discovery = within("discovery", PATIENCE, Discovery::new(client.clone()).run())
        .await
        .expect("discovery");
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if !caps.supports_operation(verbs::LIST) {
                continue;
            }
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            let list = within("list", PATIENCE, api.list(&ListParams::default()))
                .await
                .unwrap_or_else(|e| panic!("list {}: {e}", ar.plural));
            for o in list.items {
                let managed = ar.kind == "Secret"
                    && o.labels()
                        .get("gitops-seal.dev/managed-by")
                        .map(String::as_str)
                        == Some("controller");
                if managed {
                    continue;
                }
                let text = serde_json::to_string(&o).expect("json");
                out.push((
                    format!(
                        "{} {}/{}",
                        ar.kind,
                        o.namespace().unwrap_or_default(),
                        o.name_any()
                    ),
                    text,
                ));
            }
        }
    }
    out
}

fn assert_nowhere(haystacks: &[(String, String)], value: &str) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(value);
    for (what, text) in haystacks {
        assert!(!text.contains(value), "plaintext found in {what}");
        assert!(!text.contains(&b64), "base64 plaintext found in {what}");
    }
    let logs = logs();
    assert!(
        !logs.contains(value),
        "plaintext found in the controller's logs"
    );
    assert!(
        !logs.contains(&b64),
        "base64 plaintext found in the controller's logs"
    );
}

pub(super) fn apis(env: &KubeEnv) -> (Api<SealedSecret>, Api<Secret>) {
    (
        Api::namespaced(env.client.clone(), &env.namespace),
        Api::namespaced(env.client.clone(), &env.namespace),
    )
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// A SealedSecret becomes the right Secret: data (binary too), type, labels, annotations,
/// managed-by label, a controller ownerReference, applied by field manager gitops-seal with
/// `data` only; status Ready=True Unsealed with observedGeneration; the identity Secret and the
/// recipients ConfigMap are there. Then a Secret deleted by hand and one edited by hand (a
/// value changed, a key added) come back with exactly the SealedSecret's keys.
#[tokio::test]
async fn sealed_secret_becomes_the_right_secret_and_is_restored() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let running = start(&env.client, settings(&env));
    let recipients = controller_recipients(&env).await;
    let (sealed_api, secrets) = apis(&env);

    // The identity Secret: labelled, Opaque, identity.txt in age's format, opening what is
    // sealed for the published recipient.
    let ids = within(
        "list identities",
        PATIENCE,
        secrets.list(&ListParams::default().labels(&format!("{IDENTITY_LABEL}=true"))),
    )
    .await
    .expect("list identity Secrets");
    assert_eq!(ids.items.len(), 1, "one generated identity");
    assert_eq!(ids.items[0].type_.as_deref(), Some("Opaque"));
    let text =
        String::from_utf8(ids.items[0].data.as_ref().unwrap()[IDENTITY_KEY].0.clone()).unwrap();
    let identities =
        gitops_seal::core::keys::parse_identity_file(&text).expect("age identity file");
    assert_eq!(identities[0].to_recipient(), Some(recipients[0].clone()));

    let password = unique_value("pw");
    let binary: &[u8] = &[0, 1, 2, 255, b'\n'];
    let values: [(&str, &[u8]); 2] = [("password", password.as_bytes()), ("blob", binary)];
    let template = Template {
        secret_type: "Opaque",
        immutable: None,
        labels: &[("app.kubernetes.io/name", "db")],
        annotations: &[("example.com/note", "kept")],
    };
    let obj = sealed(
        "db",
        &env.namespace,
        &recipients,
        &values,
        &template,
        Scope::Strict,
    );
    let created = create_sealed(&sealed_api, &obj).await;

    let ready = await_ready(&sealed_api, "db", "True", "Unsealed").await;
    assert_eq!(ready.status.as_ref().unwrap().observed_generation, Some(1));
    let secret =
        await_secret_data(&secrets, "db", &want(&values), "the Secret with the values").await;
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    let labels = secret.labels();
    assert_eq!(
        labels.get("app.kubernetes.io/name").map(String::as_str),
        Some("db")
    );
    assert_eq!(
        labels.get("gitops-seal.dev/managed-by").map(String::as_str),
        Some("controller")
    );
    assert_eq!(
        secret
            .annotations()
            .get("example.com/note")
            .map(String::as_str),
        Some("kept")
    );
    let owners = secret.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].uid, created.metadata.uid.clone().unwrap());
    assert_eq!(owners[0].kind, "SealedSecret");
    assert_eq!(owners[0].api_version, "gitops-seal.dev/v1");
    assert_eq!(owners[0].controller, Some(true));
    let managers = secret.metadata.managed_fields.clone().unwrap_or_default();
    let ours = managers
        .iter()
        .find(|m| {
            m.manager.as_deref() == Some("gitops-seal") && m.operation.as_deref() == Some("Apply")
        })
        .expect("applied by field manager gitops-seal");
    let fields = serde_json::to_string(&ours.fields_v1).unwrap();
    assert!(
        fields.contains("f:data") && !fields.contains("stringData"),
        "{fields}"
    );

    // Deleted by hand: comes back.
    let uid = secret.metadata.uid.clone();
    within(
        "delete Secret",
        PATIENCE,
        secrets.delete("db", &DeleteParams::default()),
    )
    .await
    .expect("delete the Secret");
    let back = wait_for_some("the deleted Secret to come back", PATIENCE, || async {
        let s = secrets.get_opt("db").await.ok()??;
        (s.metadata.uid != uid).then_some(s)
    })
    .await;
    assert_eq!(data_of(&back), want(&values));

    // Edited by hand (another field manager): a value changed and a key added.
    within(
        "edit Secret",
        PATIENCE,
        secrets.patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {
                "password": base64::engine::general_purpose::STANDARD.encode("tampered"),
                "extra": base64::engine::general_purpose::STANDARD.encode("added by hand"),
            }})),
        ),
    )
    .await
    .expect("edit the Secret");
    await_secret_data(
        &secrets,
        "db",
        &want(&values),
        "the edited Secret to be restored exactly",
    )
    .await;

    // owner-reference: "false" drops the ownerReference.
    within(
        "annotate SealedSecret",
        PATIENCE,
        sealed_api.patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"gitops-seal.dev/owner-reference": "false"}}}),
            ),
        ),
    )
    .await
    .expect("annotate the SealedSecret");
    wait_for("the ownerReference to be removed", PATIENCE, || async {
        secrets
            .get_opt("db")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.metadata.owner_references.unwrap_or_default().is_empty())
    })
    .await;

    running.stop().await;
    env.cleanup().await;
}

/// Every failure reason gives Ready=False with that reason, a Warning Event, a message naming
/// no value, and leaves an existing Secret exactly as it was.
#[tokio::test]
async fn every_failure_reason_gives_its_condition_and_event_and_leaves_the_secret() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let running = start(&env.client, settings(&env));
    let recipients = controller_recipients(&env).await;
    let (sealed_api, secrets) = apis(&env);
    let ns = env.namespace.clone();

    // A good one first, then broken in place: the Secret must not change.
    let good = unique_value("good");
    let values: [(&str, &[u8]); 1] = [("token", good.as_bytes())];
    let obj = sealed("app", &ns, &recipients, &values, &OPAQUE, Scope::Strict);
    create_sealed(&sealed_api, &obj).await;
    await_ready(&sealed_api, "app", "True", "Unsealed").await;
    let before = await_secret_data(&secrets, "app", &want(&values), "the first Secret").await;

    let mut corrupt = obj.clone();
    corrupt.spec.sealed.encrypted_data = Some(
        [(
            "token".to_string(),
            base64::engine::general_purpose::STANDARD.encode("not an age file"),
        )]
        .into(),
    );
    replace_spec(&sealed_api, "app", &corrupt).await;
    await_ready(&sealed_api, "app", "False", "DecryptFailed").await;
    let note = await_event(&env, "app", "DecryptFailed").await;
    assert!(note.contains("token"), "the event names the key: {note}");
    let after = within("get Secret", PATIENCE, secrets.get("app"))
        .await
        .unwrap();
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "Secret untouched"
    );
    assert_eq!(data_of(&after), want(&values));

    // KeyMissing: sealed for someone else.
    let stranger = Identity::generate().to_recipient().unwrap();
    let other_value = unique_value("other");
    let other: [(&str, &[u8]); 1] = [("k", other_value.as_bytes())];
    create_sealed(
        &sealed_api,
        &sealed(
            "foreign",
            &ns,
            std::slice::from_ref(&stranger),
            &other,
            &OPAQUE,
            Scope::Strict,
        ),
    )
    .await;
    let o = await_ready(&sealed_api, "foreign", "False", "KeyMissing").await;
    let msg = &o.status.unwrap().conditions[0].message;
    assert!(msg.contains("\"k\""), "the condition names the key: {msg}");
    await_event(&env, "foreign", "KeyMissing").await;

    // ScopeMismatch: sealed for another namespace, strict.
    create_sealed(
        &sealed_api,
        &sealed(
            "moved",
            "elsewhere",
            &recipients,
            &other,
            &OPAQUE,
            Scope::Strict,
        ),
    )
    .await;
    await_ready(&sealed_api, "moved", "False", "ScopeMismatch").await;
    await_event(&env, "moved", "ScopeMismatch").await;

    // InvalidSpec: a malformed SealedSecret (unknown scope; the schema admits any string).
    let mut invalid = sealed("invalid", &ns, &recipients, &other, &OPAQUE, Scope::Strict);
    invalid.spec.sealed.scope = Some("galactic".into());
    create_sealed(&sealed_api, &invalid).await;
    await_ready(&sealed_api, "invalid", "False", "InvalidSpec").await;
    await_event(&env, "invalid", "InvalidSpec").await;

    // SecretConflict: an unmanaged Secret of that name exists and is left alone.
    let mut unmanaged = Secret {
        metadata: ObjectMeta {
            name: Some("taken".into()),
            ..ObjectMeta::default()
        },
        data: Some([("mine".to_string(), ByteString(b"hand-made".to_vec()))].into()),
        ..Secret::default()
    };
    unmanaged = within(
        "create Secret",
        PATIENCE,
        secrets.create(&PostParams::default(), &unmanaged),
    )
    .await
    .unwrap();
    create_sealed(
        &sealed_api,
        &sealed("taken", &ns, &recipients, &other, &OPAQUE, Scope::Strict),
    )
    .await;
    await_ready(&sealed_api, "taken", "False", "SecretConflict").await;
    await_event(&env, "taken", "SecretConflict").await;
    let still = within("get Secret", PATIENCE, secrets.get("taken"))
        .await
        .unwrap();
    assert_eq!(
        still.metadata.resource_version,
        unmanaged.metadata.resource_version
    );

    // None of these created a Secret.
    for name in ["foreign", "moved", "invalid"] {
        assert!(
            within("get", PATIENCE, secrets.get_opt(name))
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
    }
    // A fixed SealedSecret is picked up at once.
    replace_spec(&sealed_api, "app", &obj).await;
    await_ready(&sealed_api, "app", "True", "Unsealed").await;

    running.stop().await;
    for v in [&good, &other_value] {
        assert!(!logs().contains(v.as_str()));
    }
    env.cleanup().await;
}

/// An unmanaged Secret (with another controller's ownerReference) is left alone until it is
/// annotated `gitops-seal.dev/adopt: "true"`; then it is taken over: our data only, our
/// ownerReference replacing the other controller's.
#[tokio::test]
async fn unmanaged_secret_is_left_alone_until_annotated_for_adoption() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let running = start(&env.client, settings(&env));
    let recipients = controller_recipients(&env).await;
    let (sealed_api, secrets) = apis(&env);

    // The "other controller": an object that exists (so a real cluster's garbage collector
    // leaves the Secret alone).
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let mut owner_cm = ConfigMap::default();
    owner_cm.metadata.name = Some("other-controller".into());
    let owner_cm = within(
        "create owner",
        PATIENCE,
        cms.create(&PostParams::default(), &owner_cm),
    )
    .await
    .unwrap();
    let foreign_ref = json!({
        "apiVersion": "v1", "kind": "ConfigMap", "name": "other-controller",
        "uid": owner_cm.metadata.uid, "controller": true,
    });
    let existing: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "legacy", "ownerReferences": [foreign_ref]},
        "data": {"old": base64::engine::general_purpose::STANDARD.encode("legacy")},
    }))
    .unwrap();
    let existing = within(
        "create Secret",
        PATIENCE,
        secrets.create(&PostParams::default(), &existing),
    )
    .await
    .unwrap();

    let value = unique_value("adopt");
    let values: [(&str, &[u8]); 1] = [("password", value.as_bytes())];
    let created = create_sealed(
        &sealed_api,
        &sealed(
            "legacy",
            &env.namespace,
            &recipients,
            &values,
            &OPAQUE,
            Scope::Strict,
        ),
    )
    .await;
    await_ready(&sealed_api, "legacy", "False", "SecretConflict").await;
    await_event(&env, "legacy", "SecretConflict").await;
    let untouched = within("get", PATIENCE, secrets.get("legacy"))
        .await
        .unwrap();
    assert_eq!(
        untouched.metadata.resource_version,
        existing.metadata.resource_version
    );

    within(
        "annotate for adoption",
        PATIENCE,
        secrets.patch(
            "legacy",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"gitops-seal.dev/adopt": "true"}}})),
        ),
    )
    .await
    .unwrap();
    let adopted = await_secret_data(
        &secrets,
        "legacy",
        &want(&values),
        "the Secret to be adopted",
    )
    .await;
    assert_eq!(
        adopted
            .labels()
            .get("gitops-seal.dev/managed-by")
            .map(String::as_str),
        Some("controller")
    );
    let owners = adopted
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default();
    let controllers: Vec<_> = owners
        .iter()
        .filter(|o| o.controller == Some(true))
        .collect();
    assert_eq!(controllers.len(), 1, "{owners:?}");
    assert_eq!(controllers[0].uid, created.metadata.uid.clone().unwrap());
    await_ready(&sealed_api, "legacy", "True", "Unsealed").await;

    running.stop().await;
    env.cleanup().await;
}

/// The template deny list: the default entries and a `--template-deny` glob give InvalidSpec
/// and no Secret.
#[tokio::test]
async fn template_deny_list_refuses_with_invalid_spec() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let mut s = settings(&env);
    s.template_deny = vec!["example.com/copy-*".into()];
    let running = start(&env.client, s);
    let recipients = controller_recipients(&env).await;
    let (sealed_api, secrets) = apis(&env);
    let value = unique_value("deny");
    let values: [(&str, &[u8]); 1] = [("k", value.as_bytes())];

    for (name, labels, annotations) in [
        (
            "reflected",
            &[][..],
            &[("reflector.v1.k8s.emberstack.com/reflection-allowed", "true")][..],
        ),
        (
            "own-label",
            &[("gitops-seal.dev/managed-by", "controller")][..],
            &[][..],
        ),
        (
            "custom",
            &[][..],
            &[("example.com/copy-to", "everywhere")][..],
        ),
    ] {
        let template = Template {
            secret_type: "Opaque",
            immutable: None,
            labels,
            annotations,
        };
        create_sealed(
            &sealed_api,
            &sealed(
                name,
                &env.namespace,
                &recipients,
                &values,
                &template,
                Scope::Strict,
            ),
        )
        .await;
        let o = await_ready(&sealed_api, name, "False", "InvalidSpec").await;
        let msg = &o.status.unwrap().conditions[0].message;
        assert!(msg.contains("deny list"), "{msg}");
        await_event(&env, name, "InvalidSpec").await;
        assert!(within("get", PATIENCE, secrets.get_opt(name))
            .await
            .unwrap()
            .is_none());
    }
    running.stop().await;
    env.cleanup().await;
}

/// An immutable Secret whose value changes: ImmutableChanged and the Secret untouched; with
/// `gitops-seal.dev/recreate: "true"` it is deleted and created with the new value. A type
/// change is refused the same way.
#[tokio::test]
async fn immutable_secret_changes_need_recreate() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let running = start(&env.client, settings(&env));
    let recipients = controller_recipients(&env).await;
    let (sealed_api, secrets) = apis(&env);
    let first = unique_value("first");
    let second = unique_value("second");
    let immutable = IMMUTABLE;
    let v1: [(&str, &[u8]); 1] = [("k", first.as_bytes())];
    let v2: [(&str, &[u8]); 1] = [("k", second.as_bytes())];
    create_sealed(
        &sealed_api,
        &sealed(
            "frozen",
            &env.namespace,
            &recipients,
            &v1,
            &immutable,
            Scope::Strict,
        ),
    )
    .await;
    await_ready(&sealed_api, "frozen", "True", "Unsealed").await;
    let before = await_secret_data(&secrets, "frozen", &want(&v1), "the immutable Secret").await;
    assert_eq!(before.immutable, Some(true));

    replace_spec(
        &sealed_api,
        "frozen",
        &sealed(
            "frozen",
            &env.namespace,
            &recipients,
            &v2,
            &immutable,
            Scope::Strict,
        ),
    )
    .await;
    await_ready(&sealed_api, "frozen", "False", "ImmutableChanged").await;
    await_event(&env, "frozen", "ImmutableChanged").await;
    let same = within("get", PATIENCE, secrets.get("frozen"))
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(data_of(&same), want(&v1));

    within(
        "annotate recreate",
        PATIENCE,
        sealed_api.patch(
            "frozen",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"gitops-seal.dev/recreate": "true"}}}),
            ),
        ),
    )
    .await
    .unwrap();
    // Created (a POST with the data), then applied (immutable and the rest): wait for both.
    let recreated = wait_for_some(
        "the Secret to be recreated, immutable",
        PATIENCE,
        || async {
            let s = secrets.get_opt("frozen").await.ok()??;
            (data_of(&s) == want(&v2) && s.immutable == Some(true)).then_some(s)
        },
    )
    .await;
    assert_ne!(
        recreated.metadata.uid, before.metadata.uid,
        "deleted and created"
    );
    await_ready(&sealed_api, "frozen", "True", "Unsealed").await;

    // A type change on a mutable Secret: refused by the API server, ImmutableChanged.
    let v3: [(&str, &[u8]); 1] = [("k", first.as_bytes())];
    create_sealed(
        &sealed_api,
        &sealed(
            "typed",
            &env.namespace,
            &recipients,
            &v3,
            &OPAQUE,
            Scope::Strict,
        ),
    )
    .await;
    await_ready(&sealed_api, "typed", "True", "Unsealed").await;
    let typed_before = within("get", PATIENCE, secrets.get("typed")).await.unwrap();
    let other_type = Template {
        secret_type: "example.com/custom",
        immutable: None,
        labels: &[],
        annotations: &[],
    };
    replace_spec(
        &sealed_api,
        "typed",
        &sealed(
            "typed",
            &env.namespace,
            &recipients,
            &v3,
            &other_type,
            Scope::Strict,
        ),
    )
    .await;
    await_ready(&sealed_api, "typed", "False", "ImmutableChanged").await;
    let typed_after = within("get", PATIENCE, secrets.get("typed")).await.unwrap();
    assert_eq!(
        typed_after.metadata.resource_version,
        typed_before.metadata.resource_version
    );

    running.stop().await;
    env.cleanup().await;
}

/// Two controllers starting at the same moment generate exactly one identity; `--no-generate`
/// without one fails naming the namespace and the label.
#[tokio::test]
async fn key_generation_is_single_with_two_controllers() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;

    let mut no_gen = settings(&env);
    no_gen.generate = false;
    let err = within(
        "a controller without keys to give up",
        PATIENCE,
        controller::run(env.client.clone(), no_gen, std::future::pending()),
    )
    .await
    .expect_err("no identity and --no-generate is an error");
    let msg = err.to_string();
    assert!(
        msg.contains(&env.namespace) && msg.contains(IDENTITY_LABEL),
        "{msg}"
    );

    let a = start(&env.client, settings(&env));
    let b = start(&env.client, settings(&env));
    let marker = format!("keys loaded namespace={}", env.namespace);
    wait_for("both controllers to load their keys", PATIENCE, || async {
        logs().matches(&marker).count() >= 2
    })
    .await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let ids = within(
        "list identities",
        PATIENCE,
        secrets.list(&ListParams::default().labels(&format!("{IDENTITY_LABEL}=true"))),
    )
    .await
    .unwrap();
    assert_eq!(
        ids.items.len(),
        1,
        "exactly one identity: {:?}",
        ids.items.iter().map(|s| s.name_any()).collect::<Vec<_>>()
    );
    assert_eq!(controller_recipients(&env).await.len(), 1);
    a.stop().await;
    b.stop().await;
    env.cleanup().await;
}

pub(super) fn identity_secret(name: &str, identity: &Identity) -> Secret {
    let text = identity.to_identity_file("test").unwrap();
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([(IDENTITY_LABEL.to_string(), "true".to_string())].into()),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(
            [(
                IDENTITY_KEY.to_string(),
                ByteString(text.as_bytes().to_vec()),
            )]
            .into(),
        ),
        ..Secret::default()
    }
}

/// A key added later unseals a SealedSecret that waited for it, without a restart, and long
/// before any backoff retry could (the backoff is set to an hour): the identity watch
/// triggers it. The new recipient is published.
#[tokio::test]
async fn key_added_later_unseals_the_waiting_sealed_secret() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let (sealed_api, secrets) = apis(&env);
    let first = Identity::generate();
    within(
        "create identity",
        PATIENCE,
        secrets.create(&PostParams::default(), &identity_secret("key-a", &first)),
    )
    .await
    .unwrap();
    let mut s = settings(&env);
    s.generate = false;
    s.retry_base = Duration::from_secs(3600);
    s.retry_max = Duration::from_secs(3600);
    let running = start(&env.client, s);
    assert_eq!(
        controller_recipients(&env).await,
        vec![first.to_recipient().unwrap()]
    );

    let later = Identity::generate();
    let value = unique_value("later");
    let values: [(&str, &[u8]); 1] = [("k", value.as_bytes())];
    create_sealed(
        &sealed_api,
        &sealed(
            "waiting",
            &env.namespace,
            &[later.to_recipient().unwrap()],
            &values,
            &OPAQUE,
            Scope::Strict,
        ),
    )
    .await;
    await_ready(&sealed_api, "waiting", "False", "KeyMissing").await;

    within(
        "create identity",
        PATIENCE,
        secrets.create(&PostParams::default(), &identity_secret("key-b", &later)),
    )
    .await
    .unwrap();
    await_ready(&sealed_api, "waiting", "True", "Unsealed").await;
    await_secret_data(&secrets, "waiting", &want(&values), "the waiting Secret").await;
    let published = wait_for_some("both recipients published", PATIENCE, || async {
        let r = controller_recipients(&env).await;
        (r.len() == 2).then_some(r)
    })
    .await;
    assert!(published.contains(&later.to_recipient().unwrap()));
    running.stop().await;
    env.cleanup().await;
}

/// `--key-rotation`: a new identity is added once the newest is older than the period, and
/// published beside the old one; values sealed for the old key and for the new one both
/// unseal. Deleting the old identity unpublishes it at once; it goes once the SealedSecret that
/// needs it is resealed for the new key. A change sealed only for the removed key is then
/// KeyMissing, and the Secret stays.
#[tokio::test]
async fn key_rotation_adds_a_key_and_the_old_one_keeps_working_until_removed() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let (sealed_api, secrets) = apis(&env);
    let first = Identity::generate();
    let old = first.to_recipient().unwrap();
    within(
        "create identity",
        PATIENCE,
        secrets.create(&PostParams::default(), &identity_secret("key-a", &first)),
    )
    .await
    .unwrap();
    let mut s = settings(&env);
    s.generate = false;
    s.key_rotation = Some(Duration::from_secs(1));
    let running = start(&env.client, s);
    let rotated = wait_for_some("a rotated key published", PATIENCE, || async {
        let r = controller_recipients(&env).await;
        r.iter()
            .find(|r| **r != old)
            .cloned()
            .filter(|_| r.contains(&old))
    })
    .await;

    let before = unique_value("rotation-old");
    let after = unique_value("rotation-new");
    let old_values: [(&str, &[u8]); 1] = [("k", before.as_bytes())];
    let new_values: [(&str, &[u8]); 1] = [("k", after.as_bytes())];
    let for_old = |values: &[(&str, &[u8])]| {
        sealed(
            "old-key",
            &env.namespace,
            std::slice::from_ref(&old),
            values,
            &OPAQUE,
            Scope::Strict,
        )
    };
    create_sealed(&sealed_api, &for_old(&old_values)).await;
    create_sealed(
        &sealed_api,
        &sealed(
            "new-key",
            &env.namespace,
            std::slice::from_ref(&rotated),
            &new_values,
            &OPAQUE,
            Scope::Strict,
        ),
    )
    .await;
    await_ready(&sealed_api, "old-key", "True", "Unsealed").await;
    await_ready(&sealed_api, "new-key", "True", "Unsealed").await;
    await_secret_data(
        &secrets,
        "old-key",
        &want(&old_values),
        "the old key's Secret",
    )
    .await;
    await_secret_data(
        &secrets,
        "new-key",
        &want(&new_values),
        "the new key's Secret",
    )
    .await;

    // The controller holds key-a for old-key (its finalizer) before it is deleted.
    wait_for("the key-in-use finalizer on key-a", PATIENCE, || async {
        secrets
            .get_metadata_opt("key-a")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| {
                s.metadata.finalizers.is_some_and(|f| {
                    f.iter()
                        .any(|f| f == gitops_seal::core::names::KEY_IN_USE_FINALIZER)
                })
            })
    })
    .await;
    within(
        "delete the old identity",
        PATIENCE,
        secrets.delete("key-a", &DeleteParams::default()),
    )
    .await
    .unwrap();
    wait_for_some("the old recipient unpublished", PATIENCE, || async {
        let r = controller_recipients(&env).await;
        (!r.contains(&old) && r.contains(&rotated)).then_some(())
    })
    .await;
    // old-key still needs key-a: its finalizer holds it until old-key is resealed.
    assert!(
        within("get key-a", PATIENCE, secrets.get_metadata_opt("key-a"))
            .await
            .unwrap()
            .is_some_and(|s| s.metadata.deletion_timestamp.is_some())
    );
    let resealed = sealed(
        "old-key",
        &env.namespace,
        std::slice::from_ref(&rotated),
        &old_values,
        &OPAQUE,
        Scope::Strict,
    );
    replace_spec(&sealed_api, "old-key", &resealed).await;
    wait_for("key-a released once nothing needs it", PATIENCE, || async {
        matches!(secrets.get_metadata_opt("key-a").await, Ok(None))
    })
    .await;
    let changed = unique_value("rotation-changed");
    let changed_values: [(&str, &[u8]); 1] = [("k", changed.as_bytes())];
    replace_spec(&sealed_api, "old-key", &for_old(&changed_values)).await;
    await_ready(&sealed_api, "old-key", "False", "KeyMissing").await;
    await_secret_data(
        &secrets,
        "old-key",
        &want(&old_values),
        "the old key's Secret, kept",
    )
    .await;
    running.stop().await;
    env.cleanup().await;
}

/// Watches resume after an API server restart (every watch closed), a 410 Expired (history
/// compacted) and a burst of 500s on the SealedSecret list/watch: new SealedSecrets are still
/// unsealed and a deleted managed Secret still comes back.
#[tokio::test]
async fn watches_resume_after_restart_expiry_and_errors() {
    let env = KubeEnv::new().await;
    let server = require_fake!(env);
    install_crd(&env.client).await;
    let mut s = settings(&env);
    // All namespaces: the controller's list/watch paths differ from the test's namespaced
    // writes, so faults hit only the controller.
    s.watch_namespaces.clear();
    let running = start(&env.client, s);
    let recipients = controller_recipients(&env).await;
    let (sealed_api, secrets) = apis(&env);
    let value = unique_value("resume");
    let values: [(&str, &[u8]); 1] = [("k", value.as_bytes())];
    let mk = |name: &str| {
        sealed(
            name,
            &env.namespace,
            &recipients,
            &values,
            &OPAQUE,
            Scope::Strict,
        )
    };

    create_sealed(&sealed_api, &mk("one")).await;
    await_ready(&sealed_api, "one", "True", "Unsealed").await;

    server.restart();
    create_sealed(&sealed_api, &mk("two")).await;
    await_ready(&sealed_api, "two", "True", "Unsealed").await;

    server.expire_watches();
    create_sealed(&sealed_api, &mk("three")).await;
    await_ready(&sealed_api, "three", "True", "Unsealed").await;
    within(
        "delete Secret",
        PATIENCE,
        secrets.delete("one", &DeleteParams::default()),
    )
    .await
    .unwrap();
    await_secret_data(
        &secrets,
        "one",
        &want(&values),
        "Secret one to come back after the 410",
    )
    .await;

    server.fail_next("/apis/gitops-seal.dev/v1/sealedsecrets", 3, 500, None);
    server.fail_next("/api/v1/secrets", 3, 500, None);
    server.drop_watches();
    create_sealed(&sealed_api, &mk("four")).await;
    await_ready(&sealed_api, "four", "True", "Unsealed").await;
    within(
        "delete Secret",
        PATIENCE,
        secrets.delete("two", &DeleteParams::default()),
    )
    .await
    .unwrap();
    await_secret_data(
        &secrets,
        "two",
        &want(&values),
        "Secret two to come back after the 500s",
    )
    .await;

    running.stop().await;
    env.cleanup().await;
}

/// No plaintext in any log line, event, status or stored object other than the managed Secret:
/// after a success and every kind of failure, every object of every kind the server serves
/// is listed and searched, as are the controller's logs.
#[tokio::test]
async fn no_plaintext_anywhere_but_the_secret() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let running = start(&env.client, settings(&env));
    let recipients = controller_recipients(&env).await;
    let (sealed_api, _secrets) = apis(&env);
    let ns = env.namespace.clone();
    let value = unique_value("never-elsewhere");
    let values: [(&str, &[u8]); 1] = [("password", value.as_bytes())];

    create_sealed(
        &sealed_api,
        &sealed("ok", &ns, &recipients, &values, &OPAQUE, Scope::Strict),
    )
    .await;
    await_ready(&sealed_api, "ok", "True", "Unsealed").await;
    create_sealed(
        &sealed_api,
        &sealed(
            "moved",
            "elsewhere",
            &recipients,
            &values,
            &OPAQUE,
            Scope::Strict,
        ),
    )
    .await;
    await_ready(&sealed_api, "moved", "False", "ScopeMismatch").await;
    let stranger = Identity::generate().to_recipient().unwrap();
    create_sealed(
        &sealed_api,
        &sealed("foreign", &ns, &[stranger], &values, &OPAQUE, Scope::Strict),
    )
    .await;
    await_ready(&sealed_api, "foreign", "False", "KeyMissing").await;
    let immutable = IMMUTABLE;
    create_sealed(
        &sealed_api,
        &sealed(
            "frozen",
            &ns,
            &recipients,
            &values,
            &immutable,
            Scope::Strict,
        ),
    )
    .await;
    await_ready(&sealed_api, "frozen", "True", "Unsealed").await;
    let changed = unique_value("changed");
    let v2: [(&str, &[u8]); 1] = [("password", changed.as_bytes())];
    replace_spec(
        &sealed_api,
        "frozen",
        &sealed("frozen", &ns, &recipients, &v2, &immutable, Scope::Strict),
    )
    .await;
    await_ready(&sealed_api, "frozen", "False", "ImmutableChanged").await;
    await_event(&env, "frozen", "ImmutableChanged").await;

    running.stop().await;
    let stored = everything_stored_except_managed_secrets(&env.client).await;
    assert!(
        stored.iter().any(|(what, _)| what.starts_with("Event ")),
        "events were searched"
    );
    assert!(
        stored
            .iter()
            .any(|(what, _)| what.starts_with("SealedSecret ")),
        "SealedSecrets were searched"
    );
    assert_nowhere(&stored, &value);
    assert_nowhere(&stored, &changed);
    env.cleanup().await;
}

/// A free loopback port for a controller's `--listen` (bound, read, released).
pub(super) fn free_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `GET path` on the controller's HTTP server: status code and body.
pub(super) async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

pub(super) fn success_count(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("gitops_seal_unseal_total{result=\"success\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Two replicas with `--leader-election` and `--listen`: both turn ready (readiness is not
/// tied to the Lease), only the leader writes (its metrics count the unseal, the other's do
/// not), both publish the recipients, and when the leader stops the other takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_leader_with_health_and_metrics() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let replica = |name: &str| {
        let mut s = settings(&env);
        s.instance = Some(name.into());
        s.leader_election = true;
        s.listen = Some(free_port());
        s
    };
    let (sa, sb) = (replica("replica-a"), replica("replica-b"));
    let (addr_a, addr_b) = (sa.listen.unwrap(), sb.listen.unwrap());
    let a = start(&env.client, sa);
    let b = start(&env.client, sb);
    for addr in [addr_a, addr_b] {
        wait_for("/readyz to answer 200", PATIENCE, || async move {
            matches!(http_get(addr, "/readyz").await, Some((200, _)))
        })
        .await;
        let (code, _) = http_get(addr, "/healthz").await.expect("/healthz");
        assert_eq!(code, 200);
    }
    let recipients = controller_recipients(&env).await;
    let (code, body) = http_get(addr_a, "/v1/recipients")
        .await
        .expect("/v1/recipients");
    assert_eq!(code, 200);
    assert_eq!(parse_recipients_file(&body).unwrap(), recipients);

    // Which replica leads, from the Lease.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(env.client.clone(), &env.namespace);
    let holder = wait_for_some("a leader", PATIENCE, || async {
        leases
            .get_opt(gitops_seal::adapters::leader::LEASE_NAME)
            .await
            .ok()??
            .spec?
            .holder_identity
    })
    .await;
    let (leader_addr, follower_addr, leader, follower) = if holder == "replica-a" {
        (addr_a, addr_b, a, b)
    } else {
        assert_eq!(holder, "replica-b");
        (addr_b, addr_a, b, a)
    };

    let (sealed_api, secrets) = apis(&env);
    let template = Template {
        secret_type: "Opaque",
        immutable: None,
        labels: &[],
        annotations: &[],
    };
    let first = unique_value("first");
    let obj = sealed(
        "led",
        &env.namespace,
        &recipients,
        &[("v", first.as_bytes())],
        &template,
        Scope::Strict,
    );
    create_sealed(&sealed_api, &obj).await;
    await_ready(&sealed_api, "led", "True", "Unsealed").await;
    // The counter moves right after the status write the test just saw.
    let leader_metrics = wait_for_some("the leader to count the unseal", PATIENCE, || async {
        let (_, m) = http_get(leader_addr, "/metrics").await?;
        (success_count(&m) >= 1).then_some(m)
    })
    .await;
    assert!(
        leader_metrics.contains("gitops_seal_keys 1"),
        "{leader_metrics}"
    );
    let (_, follower_metrics) = http_get(follower_addr, "/metrics").await.expect("/metrics");
    assert_eq!(
        success_count(&follower_metrics),
        0,
        "the follower wrote: {follower_metrics}"
    );

    // The leader stops; the follower takes over and unseals a change.
    leader.stop().await;
    let second = unique_value("second");
    let changed = sealed(
        "led",
        &env.namespace,
        &recipients,
        &[("v", second.as_bytes())],
        &template,
        Scope::Strict,
    );
    replace_spec(&sealed_api, "led", &changed).await;
    await_secret_data(
        &secrets,
        "led",
        &want(&[("v", second.as_bytes())]),
        "the new leader to unseal the change",
    )
    .await;
    wait_for("the new leader to count its unseal", PATIENCE, || async {
        let m = http_get(follower_addr, "/metrics").await;
        m.is_some_and(|(_, m)| success_count(&m) >= 1)
    })
    .await;
    follower.stop().await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Issue 21: no race, no value in any message.

/// A Secret of someone else's, holding `theirs: keep me`.
fn someone_elses_secret(name: &str) -> Secret {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "data": {"theirs": base64::engine::general_purpose::STANDARD.encode("keep me")},
    }))
    .unwrap()
}

/// A Secret someone else creates while the controller unseals is never overwritten: the
/// controller creates (a POST) when nothing existed at its read, so it gets 409 and reports
/// SecretConflict; the other Secret keeps its data and gets no managed-by label. The write is
/// held at the server's door until the other Secret exists (no sleep).
#[tokio::test]
async fn a_secret_made_while_unsealing_is_never_overwritten() {
    let env = KubeEnv::new().await;
    let server = require_fake!(env);
    install_crd(&env.client).await;
    let running = start(&env.client, settings(&env));
    let recipients = controller_recipients(&env).await;
    let (sealed_api, secrets) = apis(&env);
    let mut held = server.hold_next(
        &[
            kube_test_server::Method::POST,
            kube_test_server::Method::PATCH,
        ],
        &format!("/api/v1/namespaces/{}/secrets", env.namespace),
    );
    let value = unique_value("raced");
    let values: [(&str, &[u8]); 1] = [("password", value.as_bytes())];
    create_sealed(
        &sealed_api,
        &sealed(
            "raced",
            &env.namespace,
            &recipients,
            &values,
            &OPAQUE,
            Scope::Strict,
        ),
    )
    .await;
    assert!(
        within("the controller's write", PATIENCE, held.arrived()).await,
        "the write arrived"
    );
    secrets
        .create(&PostParams::default(), &someone_elses_secret("raced"))
        .await
        .expect("the other Secret is created while the controller waits");
    held.release();
    let failed = await_ready(&sealed_api, "raced", "False", "SecretConflict").await;
    let message = &failed.status.unwrap().conditions[0].message;
    assert!(message.contains("raced"), "{message}");
    let live = secrets.get("raced").await.unwrap();
    assert_eq!(
        data_of(&live),
        BTreeMap::from([("theirs".to_string(), b"keep me".to_vec())])
    );
    assert!(
        !live.labels().contains_key("gitops-seal.dev/managed-by"),
        "not taken over"
    );
    running.stop().await;
    env.cleanup().await;
}

/// A recreate (immutable Secret, annotated) deletes with the uid it read: a Secret deleted and
/// made again by someone else in between survives, and the SealedSecret then reports the
/// conflict instead of taking it over.
#[tokio::test]
async fn a_recreate_never_deletes_a_secret_made_again_in_between() {
    let env = KubeEnv::new().await;
    let server = require_fake!(env);
    install_crd(&env.client).await;
    let running = start(&env.client, settings(&env));
    let recipients = controller_recipients(&env).await;
    let (sealed_api, secrets) = apis(&env);
    let immutable = IMMUTABLE;
    let (first, second) = (unique_value("first"), unique_value("second"));
    let v1: [(&str, &[u8]); 1] = [("k", first.as_bytes())];
    let v2: [(&str, &[u8]); 1] = [("k", second.as_bytes())];
    create_sealed(
        &sealed_api,
        &sealed(
            "frozen",
            &env.namespace,
            &recipients,
            &v1,
            &immutable,
            Scope::Strict,
        ),
    )
    .await;
    await_ready(&sealed_api, "frozen", "True", "Unsealed").await;
    let mut held = server.hold_next(
        &[kube_test_server::Method::DELETE],
        &format!("/api/v1/namespaces/{}/secrets/frozen", env.namespace),
    );
    sealed_api
        .patch(
            "frozen",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"annotations": {"gitops-seal.dev/recreate": "true"}},
                "spec": sealed("frozen", &env.namespace, &recipients, &v2, &immutable, Scope::Strict).spec,
            })),
        )
        .await
        .unwrap();
    assert!(
        within("the controller's delete", PATIENCE, held.arrived()).await,
        "the delete arrived"
    );
    // Someone else replaces the Secret in the meantime.
    secrets
        .delete("frozen", &DeleteParams::default())
        .await
        .unwrap();
    secrets
        .create(&PostParams::default(), &someone_elses_secret("frozen"))
        .await
        .unwrap();
    held.release();
    await_ready(&sealed_api, "frozen", "False", "SecretConflict").await;
    assert_eq!(
        data_of(&secrets.get("frozen").await.unwrap()),
        BTreeMap::from([("theirs".to_string(), b"keep me".to_vec())])
    );
    running.stop().await;
    env.cleanup().await;
}

/// kube-apiserver refuses a `dockerconfigjson` value that is not JSON with a message quoting a
/// byte of it. The condition, the Event and the log name the field and the reason only.
#[tokio::test]
async fn no_byte_of_a_refused_docker_config_reaches_condition_event_or_log() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let running = start(&env.client, settings(&env));
    let recipients = controller_recipients(&env).await;
    let (sealed_api, secrets) = apis(&env);
    let docker = Template {
        secret_type: "kubernetes.io/dockerconfigjson",
        immutable: None,
        labels: &[],
        annotations: &[],
    };
    // The byte after the JSON is the one Go's error quotes.
    let value = format!("{{\"auths\":{{}}}}Q{}", unique_value("docker"));
    let values: [(&str, &[u8]); 1] = [(".dockerconfigjson", value.as_bytes())];
    create_sealed(
        &sealed_api,
        &sealed(
            "regcred",
            &env.namespace,
            &recipients,
            &values,
            &docker,
            Scope::Strict,
        ),
    )
    .await;
    let failed = await_ready(&sealed_api, "regcred", "False", "InvalidSpec").await;
    let message = failed.status.unwrap().conditions[0].message.clone();
    let note = await_event(&env, "regcred", "InvalidSpec").await;
    for text in [&message, &note] {
        assert!(text.contains("data[.dockerconfigjson]"), "{text}");
        assert!(
            !text.contains("'Q'") && !text.contains("invalid character"),
            "the server's free text: {text}"
        );
    }
    let logs = logs();
    assert!(!logs.contains("invalid character 'Q'"), "{logs}");
    assert!(!logs.contains(&value[12..]), "a value in the log");
    assert!(secrets.get_opt("regcred").await.unwrap().is_none());
    running.stop().await;
    env.cleanup().await;
}

/// A new cluster's generated key is post-quantum; `--key-type x25519` makes a classical one.
#[tokio::test]
async fn a_new_cluster_generates_a_pq_key_and_x25519_on_request() {
    for (kind, pq) in [
        (gitops_seal::core::keys::KeyKind::Pq, true),
        (gitops_seal::core::keys::KeyKind::X25519, false),
    ] {
        let env = KubeEnv::new().await;
        install_crd(&env.client).await;
        let (sealed_api, _) = apis(&env);
        let mut s = settings(&env);
        s.key_type = kind;
        let running = start(&env.client, s);
        let published = controller_recipients(&env).await;
        assert_eq!(published.len(), 1, "{published:?}");
        assert_eq!(published[0].is_pq(), pq, "{published:?}");
        // What is sealed for the published recipient unseals.
        let values: [(&str, &[u8]); 1] = [("k", b"v")];
        create_sealed(
            &sealed_api,
            &sealed(
                "for-it",
                &env.namespace,
                &published,
                &values,
                &OPAQUE,
                Scope::Strict,
            ),
        )
        .await;
        await_ready(&sealed_api, "for-it", "True", "Unsealed").await;
        running.stop().await;
        env.cleanup().await;
    }
}

/// The migration of a running cluster (docs/OPERATIONS.md): an X25519 cluster gets a PQ key;
/// from then on only the PQ recipient is published (a repository sealing for what
/// `recipient --fetch` prints never mixes kinds), and what was sealed for the old key keeps
/// unsealing.
#[tokio::test]
async fn an_x25519_cluster_adds_a_pq_key_and_its_old_values_keep_unsealing() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let (sealed_api, secrets) = apis(&env);
    let old = Identity::generate_x25519();
    within(
        "create identity",
        PATIENCE,
        secrets.create(&PostParams::default(), &identity_secret("key-a", &old)),
    )
    .await
    .unwrap();
    let mut s = settings(&env);
    s.generate = false;
    let running = start(&env.client, s);
    assert_eq!(
        controller_recipients(&env).await,
        vec![old.to_recipient().unwrap()]
    );
    let old_values: [(&str, &[u8]); 1] = [("k", b"sealed-for-x25519")];
    create_sealed(
        &sealed_api,
        &sealed(
            "old",
            &env.namespace,
            &[old.to_recipient().unwrap()],
            &old_values,
            &OPAQUE,
            Scope::Strict,
        ),
    )
    .await;
    await_ready(&sealed_api, "old", "True", "Unsealed").await;

    let pq = Identity::generate();
    within(
        "create identity",
        PATIENCE,
        secrets.create(&PostParams::default(), &identity_secret("key-b", &pq)),
    )
    .await
    .unwrap();
    let pq_list = vec![pq.to_recipient().unwrap()];
    wait_for_some("only the PQ recipient published", PATIENCE, || async {
        (controller_recipients(&env).await == pq_list).then_some(())
    })
    .await;
    let new_values: [(&str, &[u8]); 1] = [("k", b"sealed-for-pq")];
    create_sealed(
        &sealed_api,
        &sealed(
            "new",
            &env.namespace,
            &pq_list,
            &new_values,
            &OPAQUE,
            Scope::Strict,
        ),
    )
    .await;
    await_ready(&sealed_api, "new", "True", "Unsealed").await;
    await_secret_data(&secrets, "new", &want(&new_values), "the PQ Secret").await;
    // A value sealed for the X25519 key only, arriving now (a repository not yet rekeyed),
    // still opens with the old key.
    create_sealed(
        &sealed_api,
        &sealed(
            "old-2",
            &env.namespace,
            &[old.to_recipient().unwrap()],
            &old_values,
            &OPAQUE,
            Scope::Strict,
        ),
    )
    .await;
    await_ready(&sealed_api, "old-2", "True", "Unsealed").await;
    await_secret_data(&secrets, "old-2", &want(&old_values), "the X25519 Secret").await;
    running.stop().await;
    env.cleanup().await;
}
