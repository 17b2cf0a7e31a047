//! Issue 27: which key opened what, keys retired only when nothing needs them, workloads rolled
//! when their Secret's data changes. The controller runs in process against [`KubeEnv`]; the
//! CLI steps of docs/OPERATIONS.md's rotation run the real binary.

use std::collections::BTreeMap;
use std::process::Command;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use gitops_seal::adapters::kube::SealedSecret;
use gitops_seal::core::keys::is_fingerprint;
use gitops_seal::core::names::{
    DATA_HASH_ANNOTATION, KEY_IN_USE_FINALIZER, KEY_USAGE_CONFIGMAP, KEY_USAGE_KEY,
    RECIPIENTS_CONFIGMAP, RECIPIENTS_KEY, RESTARTED_AT_ANNOTATION, RETIRED_LABEL,
    ROLLOUT_ANNOTATION,
};
use gitops_seal::core::{Identity, Recipient, Scope};

use super::controller::{
    apis, await_ready, await_secret_data, controller_recipients, create_sealed, free_port,
    http_get, identity_secret, replace_spec, sealed, settings, start, success_count, unique_value,
    want, OPAQUE,
};
use super::harness::{
    install_crd, kubeconfig_for, require_fake, wait_for, wait_for_some, within, KubeEnv, PATIENCE,
};

fn fp(id: &Identity) -> String {
    id.fingerprint().expect("an age identity has a fingerprint")
}

fn recipient(id: &Identity) -> Recipient {
    id.to_recipient().expect("an age identity has a recipient")
}

async fn create_identity(secrets: &Api<Secret>, name: &str, id: &Identity) {
    within(
        "create an identity Secret",
        PATIENCE,
        secrets.create(&PostParams::default(), &identity_secret(name, id)),
    )
    .await
    .expect("create the identity Secret");
}

/// `status.openedWith` once the current generation is Ready with it.
async fn await_opened_with(api: &Api<SealedSecret>, name: &str, want: &[String]) {
    wait_for(
        &format!("SealedSecret {name} opened with {want:?}"),
        PATIENCE,
        || async {
            api.get_opt(name).await.ok().flatten().is_some_and(|o| {
                o.status.as_ref().is_some_and(|s| {
                    s.observed_generation == o.metadata.generation && s.opened_with == want
                })
            })
        },
    )
    .await;
}

/// SealedSecret `app` with one value, `k`, sealed for `key`; its values.
async fn create_app(
    api: &Api<SealedSecret>,
    env: &KubeEnv,
    key: &Identity,
    tag: &str,
) -> BTreeMap<String, Vec<u8>> {
    let value = unique_value(tag);
    let values: [(&str, &[u8]); 1] = [("k", value.as_bytes())];
    let o = sealed(
        "app",
        &env.namespace,
        &[recipient(key)],
        &values,
        &OPAQUE,
        Scope::Strict,
    );
    create_sealed(api, &o).await;
    want(&values)
}

async fn finalizers(secrets: &Api<Secret>, name: &str) -> Option<Vec<String>> {
    let s = secrets.get_metadata_opt(name).await.ok()??;
    Some(s.metadata.finalizers.unwrap_or_default())
}

/// The metric line `gitops_seal_key_sealedsecrets{key=..,state=..} N`, as a number.
fn key_count(metrics: &str, fingerprint: &str, state: &str) -> Option<u64> {
    let prefix =
        format!("gitops_seal_key_sealedsecrets{{key=\"{fingerprint}\",state=\"{state}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// The status names, by fingerprint only, the key that opened each SealedSecret's values:
/// for a value sealed for both keys, the newest. `/metrics` counts the live SealedSecrets per
/// key, and the recipients ConfigMap carries each recipient's fingerprint.
#[tokio::test]
async fn the_status_names_the_keys_that_opened_and_metrics_count_them() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let (sealed_api, secrets) = apis(&env);
    let (old, new) = (Identity::generate(), Identity::generate());
    create_identity(&secrets, "key-a", &old).await;
    create_identity(&secrets, "key-b", &new).await;
    let mut s = settings(&env);
    s.generate = false;
    let addr = free_port();
    s.listen = Some(addr);
    let running = start(&env.client, s);

    let value = unique_value("status");
    let values: [(&str, &[u8]); 1] = [("k", value.as_bytes())];
    for (name, to) in [
        ("old-only", vec![recipient(&old)]),
        ("new-only", vec![recipient(&new)]),
        ("both", vec![recipient(&old), recipient(&new)]),
    ] {
        let o = sealed(name, &env.namespace, &to, &values, &OPAQUE, Scope::Strict);
        create_sealed(&sealed_api, &o).await;
    }
    await_opened_with(&sealed_api, "old-only", &[fp(&old)]).await;
    await_opened_with(&sealed_api, "new-only", &[fp(&new)]).await;
    // key-b sorts after key-a when both are created in the same second: it counts as newer,
    // and a value both open is attributed to it.
    await_opened_with(&sealed_api, "both", &[fp(&new)]).await;

    // Nothing but fingerprints: no recipient, no value, no key.
    let o = sealed_api.get("old-only").await.unwrap();
    let status = serde_json::to_string(&o.status).unwrap();
    for f in &o.status.as_ref().unwrap().opened_with {
        assert!(is_fingerprint(f), "{f}");
    }
    assert!(!status.contains(&value), "{status}");
    assert!(!status.contains(&recipient(&old).to_string()), "{status}");
    assert!(!status.contains("AGE-SECRET-KEY"), "{status}");

    wait_for("per-key counts on /metrics", PATIENCE, || async {
        let Some((200, m)) = http_get(addr, "/metrics").await else {
            return false;
        };
        key_count(&m, &fp(&old), "active") == Some(1)
            && key_count(&m, &fp(&new), "active") == Some(2)
    })
    .await;

    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let text = cms.get(RECIPIENTS_CONFIGMAP).await.unwrap().data.unwrap()[RECIPIENTS_KEY].clone();
    assert!(
        text.contains(&format!("# fingerprint: {}", fp(&new))),
        "{text}"
    );
    running.stop().await;
    env.cleanup().await;
}

/// The key that opens a value is held before anything it opened is written: on one ordered
/// watch of the namespace's Secrets, the finalizer lands on the identity Secret before the
/// unsealed Secret appears. A `kubectl delete` of the key at any point after the Secret exists
/// is therefore held.
#[tokio::test]
async fn the_key_is_held_before_the_secret_it_opened_is_written() {
    use futures::StreamExt;
    use kube::runtime::watcher;

    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let (sealed_api, secrets) = apis(&env);
    let key = Identity::generate();
    create_identity(&secrets, "key-a", &key).await;
    let mut s = settings(&env);
    s.generate = false;
    let running = start(&env.client, s);

    let held = |s: &Secret| s.finalizers().iter().any(|f| f == KEY_IN_USE_FINALIZER);
    let mut events = watcher::watcher(secrets.clone(), watcher::Config::default()).boxed();
    within("the Secrets' initial list", PATIENCE, async {
        loop {
            match events.next().await {
                Some(Ok(watcher::Event::InitApply(s))) if s.name_any() == "key-a" => {
                    assert!(!held(&s), "nothing uses the key yet");
                }
                Some(Ok(watcher::Event::InitDone)) => break,
                Some(_) => {}
                None => panic!("the watch ended"),
            }
        }
    })
    .await;

    create_app(&sealed_api, &env, &key, "held").await;
    let mut key_held = false;
    within("the unsealed Secret on the watch", PATIENCE, async {
        loop {
            match events.next().await {
                // A relist (the watch restarted) replays the objects as InitApply.
                Some(Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)))
                    if s.name_any() == "key-a" =>
                {
                    key_held |= held(&s);
                }
                Some(Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)))
                    if s.name_any() == "app" =>
                {
                    break
                }
                Some(_) => {}
                None => panic!("the watch ended"),
            }
        }
    })
    .await;
    assert!(
        key_held,
        "the Secret was written before its key carried {KEY_IN_USE_FINALIZER}"
    );
    running.stop().await;
    env.cleanup().await;
}

/// A controller without the RBAC to hold its keys (403 on patching its identity Secrets,
/// injected, as the test API server admits all) still unseals: refusing would help nothing.
#[tokio::test]
async fn a_controller_that_may_not_hold_its_keys_still_unseals() {
    let env = KubeEnv::new().await;
    let server = require_fake!(env);
    install_crd(&env.client).await;
    let (sealed_api, secrets) = apis(&env);
    let key = Identity::generate();
    create_identity(&secrets, "key-a", &key).await;
    let path = format!("/api/v1/namespaces/{}/secrets/key-a", env.namespace);
    // The hold's PATCH is held at the door: it comes before the Secret is written.
    let mut patch = server.hold_next(&[hyper::Method::PATCH], &path);
    let mut s = settings(&env);
    s.generate = false;
    let running = start(&env.client, s);

    let values = create_app(&sealed_api, &env, &key, "unheld").await;
    assert!(
        within("the hold's PATCH", PATIENCE, patch.arrived()).await,
        "the server went away"
    );
    assert!(
        secrets.get_opt("app").await.unwrap().is_none(),
        "the Secret was written before its key was held"
    );
    // It, and every PATCH of the key after it, is refused.
    server.fail_next_method(Some(hyper::Method::PATCH), &path, 1_000_000, 403, None);
    patch.release();
    await_ready(&sealed_api, "app", "True", "Unsealed").await;
    await_secret_data(&secrets, "app", &values, "the unsealed Secret").await;
    assert_eq!(finalizers(&secrets, "key-a").await, Some(vec![]));
    running.stop().await;
    env.cleanup().await;
}

/// An OpenSSH key held by the controller (made by the real `ssh-keygen`) is named by its
/// fingerprint and held like any key, and is never published for new sealing.
#[tokio::test]
async fn an_ssh_key_in_the_controller_is_named_and_held_but_not_published() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let (sealed_api, secrets) = apis(&env);
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(dir.path().join("id"))
        .output()
        .expect("ssh-keygen (openssh-client) runs");
    assert!(made.status.success(), "{made:?}");
    let text = std::fs::read_to_string(dir.path().join("id")).unwrap();
    let key = gitops_seal::core::keys::parse_identity_file(&text)
        .unwrap()
        .remove(0);
    let mut secret = identity_secret("key-ssh", &Identity::generate());
    secret.data.as_mut().unwrap().insert(
        gitops_seal::core::names::IDENTITY_KEY.to_string(),
        k8s_openapi::ByteString(text.into_bytes()),
    );
    within(
        "create the ssh identity Secret",
        PATIENCE,
        secrets.create(&PostParams::default(), &secret),
    )
    .await
    .expect("create the identity Secret");
    let mut s = settings(&env);
    s.generate = false;
    let addr = free_port();
    s.listen = Some(addr);
    let running = start(&env.client, s);

    create_app(&sealed_api, &env, &key, "ssh").await;
    let ssh_fp = fp(&key);
    assert!(ssh_fp.starts_with("ssh:"), "{ssh_fp}");
    await_opened_with(&sealed_api, "app", std::slice::from_ref(&ssh_fp)).await;
    wait_for("the finalizer on the ssh key", PATIENCE, || async {
        finalizers(&secrets, "key-ssh")
            .await
            .is_some_and(|f| f.contains(&KEY_IN_USE_FINALIZER.to_string()))
    })
    .await;
    // Nothing to publish: the only key is an ssh key (the ConfigMap is written with the
    // keyring, before any SealedSecret is reconciled).
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let published =
        cms.get(RECIPIENTS_CONFIGMAP).await.unwrap().data.unwrap()[RECIPIENTS_KEY].clone();
    assert!(!published.contains("ssh-ed25519"), "{published}");
    let served = http_get(addr, "/v1/recipients").await;
    assert!(
        served
            .as_ref()
            .is_some_and(|(_, body)| !body.contains("ssh-ed25519")),
        "{served:?}"
    );
    running.stop().await;
    env.cleanup().await;
}

/// A key labelled retired is no longer published (ConfigMap and /v1/recipients) and keeps
/// unsealing what only it opens; a value the active key opens too is attributed to that one.
#[tokio::test]
async fn a_retired_key_is_unpublished_and_keeps_unsealing() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let (sealed_api, secrets) = apis(&env);
    let (old, new) = (Identity::generate(), Identity::generate());
    create_identity(&secrets, "key-b", &old).await;
    create_identity(&secrets, "key-a", &new).await;
    // key-b would be the newer by name; retiring it puts it last whatever its age.
    let retire = json!({"metadata": {"labels": {RETIRED_LABEL: "true"}}});
    secrets
        .patch("key-b", &PatchParams::default(), &Patch::Merge(&retire))
        .await
        .unwrap();
    let mut s = settings(&env);
    s.generate = false;
    let addr = free_port();
    s.listen = Some(addr);
    let running = start(&env.client, s);
    assert_eq!(controller_recipients(&env).await, vec![recipient(&new)]);
    let served = wait_for_some("/v1/recipients", PATIENCE, || async {
        http_get(addr, "/v1/recipients")
            .await
            .filter(|(code, _)| *code == 200)
            .map(|(_, body)| body)
    })
    .await;
    assert!(served.contains(&recipient(&new).to_string()), "{served}");
    assert!(!served.contains(&recipient(&old).to_string()), "{served}");

    let value = unique_value("retired");
    let values: [(&str, &[u8]); 1] = [("k", value.as_bytes())];
    let only_old = sealed(
        "only-old",
        &env.namespace,
        &[recipient(&old)],
        &values,
        &OPAQUE,
        Scope::Strict,
    );
    create_sealed(&sealed_api, &only_old).await;
    let both = sealed(
        "both",
        &env.namespace,
        &[recipient(&old), recipient(&new)],
        &values,
        &OPAQUE,
        Scope::Strict,
    );
    create_sealed(&sealed_api, &both).await;
    await_ready(&sealed_api, "only-old", "True", "Unsealed").await;
    await_secret_data(
        &secrets,
        "only-old",
        &want(&values),
        "the retired key's Secret",
    )
    .await;
    await_opened_with(&sealed_api, "only-old", &[fp(&old)]).await;
    await_opened_with(&sealed_api, "both", &[fp(&new)]).await;
    wait_for("the retired key counted as retired", PATIENCE, || async {
        let Some((200, m)) = http_get(addr, "/metrics").await else {
            return false;
        };
        key_count(&m, &fp(&old), "retired") == Some(1)
    })
    .await;
    running.stop().await;
    env.cleanup().await;
}

/// An event about `regarding` (a Secret) with `reason`; its note.
async fn await_secret_event(
    env: &KubeEnv,
    regarding: &str,
    reason: &str,
    contains: &str,
) -> String {
    let events: Api<K8sEvent> = Api::namespaced(env.client.clone(), &env.namespace);
    wait_for_some(
        &format!("a {reason} event about {regarding} naming {contains}"),
        PATIENCE,
        || async {
            let list = events
                .list(&ListParams::default().fields(&format!("regarding.name={regarding}")))
                .await
                .ok()?;
            list.items.into_iter().find_map(|e| {
                let note = e.note.clone().unwrap_or_default();
                (e.reason.as_deref() == Some(reason) && note.contains(contains)).then_some(note)
            })
        },
    )
    .await
}

fn gitops_seal(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gitops-seal"))
        .args(args)
        .current_dir(dir)
        .env_remove("KUBECONFIG")
        .env_remove("GITOPS_SEAL_IDENTITY")
        .output()
        .expect("run gitops-seal");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the binary off the runtime (the test API server answers on it meanwhile).
async fn gitops_seal_async(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    within(
        "gitops-seal to finish",
        PATIENCE,
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            gitops_seal(&dir, &args)
        }),
    )
    .await
    .expect("the blocking task")
}

/// The SealedSecret in `file` (as `encrypt`/`rekey` wrote it), as the cluster gets it.
fn sealed_from_file(path: &std::path::Path) -> SealedSecret {
    let text = std::fs::read_to_string(path).unwrap();
    let value: serde_json::Value = serde_saphyr::from_str(&text).expect("a SealedSecret in YAML");
    serde_json::from_value(value).expect("a SealedSecret resource")
}

/// docs/OPERATIONS.md's whole rotation, from a new key to the old key's deletion: a key in use
/// is held by the finalizer through `kubectl delete`, keeps unsealing, is named in the usage
/// report and an event while anything holds it, and goes once its last user is resealed.
#[tokio::test]
async fn the_whole_rotation_from_a_new_key_to_the_old_keys_deletion() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let (sealed_api, secrets) = apis(&env);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_for(&env, dir.path());
    let kubeconfig = kubeconfig.to_str().unwrap();
    let ns = env.namespace.as_str();

    // The cluster's first key, and a person's key (a recipient of every value, to rekey with).
    let old = Identity::generate();
    create_identity(&secrets, "gitops-seal-identity", &old).await;
    let mut s = settings(&env);
    s.generate = false;
    let addr = free_port();
    s.listen = Some(addr);
    let running = start(&env.client, s);
    let (code, _, err) = gitops_seal(dir.path(), &["keygen", "-o", "me.txt"]);
    assert_eq!(code, 0, "{err}");
    let (_, me, _) = gitops_seal(dir.path(), &["recipient", "-i", "me.txt"]);
    let (code, cluster, err) = gitops_seal_async(
        dir.path(),
        &["recipient", "--fetch", "-n", ns, "--kubeconfig", kubeconfig],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    std::fs::write(dir.path().join("prod.pub"), format!("{cluster}{me}")).unwrap();

    // A Secret sealed for the cluster's first key, in Git and in the cluster.
    let value = unique_value("rotation");
    std::fs::write(
        dir.path().join("db.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: {ns}\nstringData:\n  password: {value}\n"
        ),
    )
    .unwrap();
    let (code, _, err) = gitops_seal(
        dir.path(),
        &["encrypt", "-R", "prod.pub", "--in-place", "db.yaml"],
    );
    assert_eq!(code, 0, "{err}");
    create_sealed(&sealed_api, &sealed_from_file(&dir.path().join("db.yaml"))).await;
    await_opened_with(&sealed_api, "db", &[fp(&old)]).await;
    wait_for("the finalizer on the key in use", PATIENCE, || async {
        finalizers(&secrets, "gitops-seal-identity")
            .await
            .is_some_and(|f| f.contains(&KEY_IN_USE_FINALIZER.to_string()))
    })
    .await;

    // 1. Add a key; retire the old one (only the new recipient is published).
    let (code, _, err) = gitops_seal(dir.path(), &["keygen", "-o", "new-key.txt"]);
    assert_eq!(code, 0, "{err}");
    let new_text = std::fs::read_to_string(dir.path().join("new-key.txt")).unwrap();
    let new = gitops_seal::core::keys::parse_identity_file(&new_text)
        .unwrap()
        .remove(0);
    create_identity(&secrets, "gitops-seal-identity-2", &new).await;
    let retire = json!({"metadata": {"labels": {RETIRED_LABEL: "true"}}});
    secrets
        .patch(
            "gitops-seal-identity",
            &PatchParams::default(),
            &Patch::Merge(&retire),
        )
        .await
        .unwrap();
    wait_for_some("only the new recipient published", PATIENCE, || async {
        (controller_recipients(&env).await == vec![recipient(&new)]).then_some(())
    })
    .await;

    // 6 (too early). Deleting the old key while db needs it: the finalizer holds it.
    within(
        "delete the old key",
        PATIENCE,
        secrets.delete("gitops-seal-identity", &DeleteParams::default()),
    )
    .await
    .unwrap();
    let held = secrets
        .get_metadata("gitops-seal-identity")
        .await
        .expect("a key in use outlives its deletion");
    assert!(held.metadata.deletion_timestamp.is_some());
    await_secret_event(
        &env,
        "gitops-seal-identity",
        "KeyInUse",
        &format!("{ns}/db"),
    )
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), ns);
    wait_for("the usage report names db", PATIENCE, || async {
        cms.get_opt(KEY_USAGE_CONFIGMAP)
            .await
            .ok()
            .flatten()
            .and_then(|c| c.data)
            .and_then(|d| d.get(KEY_USAGE_KEY).cloned())
            .is_some_and(|t| {
                t.contains(&fp(&old)) && t.contains("deleting") && t.contains(&format!("{ns}/db"))
            })
    })
    .await;
    // It keeps unsealing: a changed value, still sealed for the old key, is applied.
    let changed = unique_value("still-old");
    let changed_values: [(&str, &[u8]); 1] = [("password", changed.as_bytes())];
    let still_old = sealed(
        "db",
        ns,
        &[recipient(&old)],
        &changed_values,
        &OPAQUE,
        Scope::Strict,
    );
    replace_spec(&sealed_api, "db", &still_old).await;
    await_secret_data(
        &secrets,
        "db",
        &want(&changed_values),
        "the value the held key opens",
    )
    .await;

    // 2-4. Fetch, rekey (checked offline with the key that stays), merge.
    let (code, cluster, err) = gitops_seal_async(
        dir.path(),
        &["recipient", "--fetch", "-n", ns, "--kubeconfig", kubeconfig],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(!cluster.contains(&recipient(&old).to_string()), "{cluster}");
    std::fs::write(dir.path().join("prod.pub"), format!("{cluster}{me}")).unwrap();
    let (code, _, err) = gitops_seal(
        dir.path(),
        &["rekey", "-i", "me.txt", "-R", "prod.pub", "db.yaml"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = gitops_seal(
        dir.path(),
        &["keys", "usage", "-i", "new-key.txt", "db.yaml"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&fp(&new)), "{out}");
    let rekeyed = sealed_from_file(&dir.path().join("db.yaml"));
    replace_spec(&sealed_api, "db", &rekeyed).await;

    // 5. The old key's count reaches 0; the key goes.
    await_opened_with(&sealed_api, "db", &[fp(&new)]).await;
    wait_for("the old key released and gone", PATIENCE, || async {
        matches!(
            secrets.get_metadata_opt("gitops-seal-identity").await,
            Ok(None)
        )
    })
    .await;
    await_secret_data(
        &secrets,
        "db",
        &want(&[("password", value.as_bytes())]),
        "the rekeyed value",
    )
    .await;
    await_secret_event(&env, "gitops-seal-identity", "KeyReleased", &fp(&old)).await;
    // The new key is now held for db.
    wait_for("the finalizer on the new key", PATIENCE, || async {
        finalizers(&secrets, "gitops-seal-identity-2")
            .await
            .is_some_and(|f| f.contains(&KEY_IN_USE_FINALIZER.to_string()))
    })
    .await;
    wait_for("/metrics without the old key", PATIENCE, || async {
        let Some((200, m)) = http_get(addr, "/metrics").await else {
            return false;
        };
        !m.contains(&fp(&old)) && key_count(&m, &fp(&new), "active") == Some(1)
    })
    .await;
    // And a change sealed for the deleted key alone no longer opens.
    replace_spec(&sealed_api, "db", &still_old).await;
    await_ready(&sealed_api, "db", "False", "KeyMissing").await;
    running.stop().await;
    env.cleanup().await;
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]},
            },
        },
    }))
    .unwrap()
}

fn restarted_at(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(RESTARTED_AT_ANNOTATION)
        .cloned()
}

fn with_rollout(mut o: SealedSecret, value: &str) -> SealedSecret {
    o.annotations_mut()
        .insert(ROLLOUT_ANNOTATION.into(), value.into());
    o
}

/// `--rollout`: a data change rolls the named Deployment with a timestamp that carries nothing
/// of the secret; creation, a metadata-only change, a rekey (same values, new ciphertext) and a
/// controller restart roll nothing. A missing workload and one in another namespace are a
/// condition note and an event, not a failure.
#[tokio::test]
async fn a_data_change_rolls_the_named_workloads_and_nothing_else_does() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let (sealed_api, secrets) = apis(&env);
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    deployments
        .create(&PostParams::default(), &deployment("web"))
        .await
        .expect("create Deployment web");
    let statefulsets: Api<StatefulSet> = Api::namespaced(env.client.clone(), &env.namespace);
    let mut db = serde_json::to_value(deployment("db")).unwrap();
    db["kind"] = json!("StatefulSet");
    db["spec"]["serviceName"] = json!("db");
    let db: StatefulSet = serde_json::from_value(db).unwrap();
    statefulsets
        .create(&PostParams::default(), &db)
        .await
        .expect("create StatefulSet db");
    let key = Identity::generate();
    create_identity(&secrets, "key", &key).await;
    let settings_for = || {
        let mut s = settings(&env);
        s.generate = false;
        s.rollout = true;
        s
    };
    let mut s = settings_for();
    let addr = free_port();
    s.listen = Some(addr);
    let running = start(&env.client, s);
    let to = [recipient(&key)];
    let rollout = "deployment/web, sts/db, statefulset/missing, elsewhere/deployment/web";
    let make = |values: &[(&str, &[u8])]| {
        with_rollout(
            sealed("app", &env.namespace, &to, values, &OPAQUE, Scope::Strict),
            rollout,
        )
    };
    let first = unique_value("rollout-first");
    let first_values: [(&str, &[u8]); 1] = [("k", first.as_bytes())];
    create_sealed(&sealed_api, &make(&first_values)).await;
    await_ready(&sealed_api, "app", "True", "Unsealed").await;
    let not_rolled = |what: &'static str| {
        let deployments = deployments.clone();
        let statefulsets = statefulsets.clone();
        async move {
            let d = deployments.get("web").await.unwrap();
            assert_eq!(restarted_at(&d), None, "rolled on {what}");
            let s = serde_json::to_value(statefulsets.get("db").await.unwrap()).unwrap();
            assert!(
                s.pointer(&format!(
                    "/spec/template/metadata/annotations/{}",
                    RESTARTED_AT_ANNOTATION.replace('/', "~1")
                ))
                .is_none(),
                "db rolled on {what}"
            );
        }
    };
    not_rolled("creation").await;

    // A metadata-only change (a template label), and a rekey (same value, new ciphertext).
    let mut relabelled = make(&first_values);
    relabelled.spec.sealed.template = Some(
        serde_json::from_value(json!({"type": "Opaque", "metadata": {"labels": {"tier": "db"}}}))
            .unwrap(),
    );
    let relabelled_spec = relabelled.spec.clone();
    sealed_api
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": relabelled_spec})),
        )
        .await
        .unwrap();
    await_ready(&sealed_api, "app", "True", "Unsealed").await;
    wait_for("the label applied", PATIENCE, || async {
        secrets
            .get_metadata("app")
            .await
            .is_ok_and(|s| s.labels().get("tier").map(String::as_str) == Some("db"))
    })
    .await;
    not_rolled("a metadata change").await;
    replace_spec(&sealed_api, "app", &make(&first_values)).await;
    await_ready(&sealed_api, "app", "True", "Unsealed").await;
    not_rolled("a rekey").await;

    // A restart reconciles everything again, and rolls nothing.
    running.stop().await;
    let mut s = settings_for();
    let addr = free_port();
    s.listen = Some(addr);
    let running = start(&env.client, s);
    wait_for(
        "the restarted controller reconciled app",
        PATIENCE,
        || async {
            http_get(addr, "/metrics")
                .await
                .is_some_and(|(_, m)| success_count(&m) >= 1)
        },
    )
    .await;
    not_rolled("a restart").await;
    let before = secrets.get_metadata("app").await.unwrap();
    let before = before.annotations()[DATA_HASH_ANNOTATION].clone();
    assert_eq!(before.len(), 64, "{before}");

    // A data change rolls web, with a time and nothing derived from the secret.
    let second = unique_value("rollout-second");
    let second_values: [(&str, &[u8]); 1] = [("k", second.as_bytes())];
    replace_spec(&sealed_api, "app", &make(&second_values)).await;
    let ready = await_ready(&sealed_api, "app", "True", "Unsealed").await;
    let stamp = wait_for_some("web rolled", PATIENCE, || async {
        restarted_at(&deployments.get("web").await.ok()?)
    })
    .await;
    wait_for("db rolled", PATIENCE, || async {
        statefulsets.get("db").await.is_ok_and(|s| {
            s.spec
                .and_then(|s| s.template.metadata)
                .and_then(|m| m.annotations)
                .is_some_and(|a| a.contains_key(RESTARTED_AT_ANNOTATION))
        })
    })
    .await;
    stamp
        .parse::<k8s_openapi::jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{stamp:?} is a time: {e}"));
    // The hash on the Secret is now the new data's: what was rolled for.
    let hash =
        secrets.get_metadata("app").await.unwrap().annotations()[DATA_HASH_ANNOTATION].clone();
    assert!(hash.len() == 64 && hash != before, "{before} -> {hash}");
    assert!(
        !stamp.contains(&hash[..8]) && !stamp.contains(&second),
        "{stamp}"
    );
    let d = serde_json::to_string(&deployments.get("web").await.unwrap()).unwrap();
    assert!(!d.contains(&hash) && !d.contains(&second), "{d}");
    // What is wrong with the annotation stays in the condition; what the roll met is also
    // in an event.
    let message = &ready.status.as_ref().unwrap().conditions[0].message;
    assert!(
        message.contains("statefulset/missing not found")
            && message.contains("elsewhere/deployment/web: workloads in another namespace"),
        "{message}"
    );
    let note = super::controller::await_event(&env, "app", "RolloutSkipped").await;
    assert!(
        note.contains("statefulset/missing not found") && note.contains("another namespace"),
        "{note}"
    );
    running.stop().await;
    env.cleanup().await;
}
