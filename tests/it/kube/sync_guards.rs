//! Issue 21: a Git push must never own the cluster's keys. Each test is an attacker with push
//! rights (or a careless neighbour) against the sync loop, through the test API server (or a real
//! cluster) and real Git repositories: what the controller refuses, sync refuses; sync takes over
//! nothing it did not create, and forged labels or inventories do not change that; a prune
//! deletes only what it read; a refused commit applies nothing; no byte of a refused value reaches
//! a message; symlinks are not manifests.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use zeroize::Zeroizing;

use gitops_seal::core::deny::DenyList;
use gitops_seal::core::{self as core, Identity, PlainSecret, Scope};
use gitops_seal::sync::{self, plan::SYNC_LABEL, SyncError};

use super::harness::{random_suffix, require_fake, within, KubeEnv, PATIENCE};
use super::sync::{configmap, pass, sealed, status, Repo};

/// A SealedSecret manifest (JSON, which is YAML) whose template carries `labels` and
/// `annotations`, sealed for `identity`.
fn sealed_with(
    identity: &Identity,
    ns: &str,
    name: &str,
    secret_type: &str,
    values: &[(&str, &[u8])],
    labels: &[(&str, &str)],
    annotations: &[(&str, &str)],
) -> String {
    let map = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let plain = PlainSecret {
        name: name.into(),
        namespace: Some(ns.into()),
        secret_type: secret_type.into(),
        labels: map(labels),
        annotations: map(annotations),
        data: values
            .iter()
            .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_vec())))
            .collect(),
        ..PlainSecret::default()
    };
    let s = core::SealedSecret::seal(
        &plain,
        &[identity.to_recipient().unwrap()],
        Scope::Strict,
        None,
        None,
    )
    .unwrap();
    serde_json::to_string_pretty(&s.to_value()).unwrap() + "\n"
}

/// Creates a ConfigMap as someone other than the sync would (a plain create, its own field
/// manager), with `labels` and `annotations`.
async fn foreign_configmap(
    env: &KubeEnv,
    name: &str,
    labels: serde_json::Value,
    annotations: serde_json::Value,
) -> ConfigMap {
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "data": {"mode": "theirs"},
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap()
}

fn mode(cm: &ConfigMap) -> &str {
    cm.data.as_ref().unwrap()["mode"].as_str()
}

/// What the controller refuses, a pushed commit cannot apply through sync: a template that
/// carries the identity label (the pusher's key, loaded as a second controller key) or a
/// replication annotation, a plain Secret labelled as an identity, or a key the controller's
/// `--template-deny` adds. Each refuses the whole commit, naming file, document and object.
#[tokio::test]
async fn a_pushed_identity_or_denied_template_is_refused_and_nothing_applied() {
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    let id: Arc<[Identity]> = vec![Identity::generate()].into();
    let cluster = &id[0];
    let pusher = Identity::generate();
    let pusher_key = pusher.to_identity_file("now").unwrap().to_string();
    let repo = Repo::new();
    let mut settings = repo.settings("guard", &ns);
    settings.plan.deny = DenyList::new(&["example.com/*".to_string()]).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "identity label",
            sealed_with(
                cluster,
                &ns,
                "planted",
                "Opaque",
                &[("identity.txt", pusher_key.as_bytes())],
                &[("gitops-seal.dev/identity", "true")],
                &[],
            ),
            "gitops-seal.dev/identity",
        ),
        (
            "replication annotation",
            sealed_with(
                cluster,
                &ns,
                "planted",
                "Opaque",
                &[("k", b"v")],
                &[],
                &[("reflector.v1.k8s.emberstack.com/reflection-allowed", "true")],
            ),
            "reflector.v1.k8s.emberstack.com",
        ),
        (
            "--template-deny addition",
            sealed_with(
                cluster,
                &ns,
                "planted",
                "Opaque",
                &[("k", b"v")],
                &[("example.com/x", "y")],
                &[],
            ),
            "example.com/x",
        ),
        (
            "plain Secret labelled as an identity",
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: planted\n  namespace: {ns}\n  labels: {{gitops-seal.dev/identity: \"true\"}}\n"
            ),
            "gitops-seal.dev/identity",
        ),
    ];
    for (what, manifest, needle) in cases {
        repo.write("a.yaml", &configmap(&ns, "a", "one"));
        repo.write("planted.yaml", &manifest);
        repo.commit(what);
        let err = pass(&env, &settings, &id).await.unwrap_err();
        let text = sync::error_chain(&err);
        assert!(matches!(err, SyncError::Plan { .. }), "{what}: {text}");
        assert!(
            text.contains("planted.yaml")
                && text.contains("document 1")
                && text.contains("planted")
                && text.contains(needle),
            "{what}: {text}"
        );
        assert!(!text.contains(&pusher_key), "{what}: a key in the message");
        assert!(cms.get_opt("a").await.unwrap().is_none(), "{what}: applied");
        assert!(secrets.get_opt("planted").await.unwrap().is_none());
    }
    env.cleanup().await;
}

/// Inside the controller the loop writes nothing in the controller's namespace: not a forged
/// recipients ConfigMap, not an identity Secret, not that Namespace itself.
#[tokio::test]
async fn nothing_is_written_in_the_protected_namespace() {
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    let id: Arc<[Identity]> = vec![Identity::generate()].into();
    let repo = Repo::new();
    let mut settings = repo.settings("guard", &ns);
    settings.plan.protected_namespace = Some(ns.clone());
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    for (what, manifest) in [
        (
            "recipients ConfigMap",
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: gitops-seal-recipients, namespace: {ns}}}\ndata: {{recipients.txt: age1x}}\n"),
        ),
        ("the Namespace", format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n")),
        ("a sealed Secret", sealed(&id[0], &ns, "db", "k", "v")),
    ] {
        repo.write("x.yaml", &manifest);
        repo.commit(what);
        let err = pass(&env, &settings, &id).await.unwrap_err();
        let text = sync::error_chain(&err);
        assert!(text.contains("x.yaml") && text.contains("controller's own"), "{what}: {text}");
    }
    assert!(cms
        .get_opt("gitops-seal-recipients")
        .await
        .unwrap()
        .is_none());
    env.cleanup().await;
}

/// Sync changes an existing object only if it created it. A foreign ConfigMap is refused (and
/// nothing of the commit applied) until it is annotated for adoption; a controller identity
/// Secret is refused even then.
#[tokio::test]
async fn sync_never_takes_over_an_object_it_did_not_create() {
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    let id: Arc<[Identity]> = vec![Identity::generate()].into();
    let cluster = &id[0];
    let cluster_key = cluster.to_identity_file("now").unwrap().to_string();
    let repo = Repo::new();
    let settings = repo.settings("owner", &ns);
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    foreign_configmap(&env, "theirs", json!({}), json!({})).await;

    repo.write("theirs.yaml", &configmap(&ns, "theirs", "ours"));
    repo.write("mine.yaml", &configmap(&ns, "mine", "ours"));
    repo.commit("takeover");
    let err = pass(&env, &settings, &id).await.unwrap_err();
    let text = sync::error_chain(&err);
    assert!(matches!(err, SyncError::Refused { .. }), "{text}");
    assert!(
        text.contains("theirs.yaml")
            && text.contains("ConfigMap")
            && text.contains("gitops-seal.dev/adopt"),
        "{text}"
    );
    assert_eq!(mode(&cms.get("theirs").await.unwrap()), "theirs");
    assert!(
        cms.get_opt("mine").await.unwrap().is_none(),
        "nothing of the commit"
    );

    // Consent: the adopt annotation.
    cms.patch(
        "theirs",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"gitops-seal.dev/adopt": "true"}}})),
    )
    .await
    .unwrap();
    pass(&env, &settings, &id).await.unwrap();
    let adopted = cms.get("theirs").await.unwrap();
    assert_eq!(mode(&adopted), "ours");
    assert_eq!(adopted.labels()[SYNC_LABEL], "owner");

    // The controller's identity Secret, named by a SealedSecret: never, adopt or not.
    let identity: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "gitops-seal-identity",
            "labels": {"gitops-seal.dev/identity": "true"},
            "annotations": {"gitops-seal.dev/adopt": "true"}},
        "stringData": {"identity.txt": cluster_key},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &identity)
        .await
        .unwrap();
    repo.write(
        "id.yaml",
        &sealed(
            cluster,
            &ns,
            "gitops-seal-identity",
            "identity.txt",
            // One line (the manifest's flow mapping): the pusher's key itself is not needed.
            "AGE-SECRET-KEY-1PUSHER",
        ),
    );
    repo.commit("replace the controller's key");
    let err = pass(&env, &settings, &id).await.unwrap_err();
    let text = sync::error_chain(&err);
    assert!(
        text.contains("controller identity") && text.contains("id.yaml"),
        "{text}"
    );
    let live = secrets.get("gitops-seal-identity").await.unwrap();
    assert_eq!(
        live.data.unwrap()["identity.txt"].0,
        cluster_key.as_bytes(),
        "the controller's key is untouched"
    );
    env.cleanup().await;
}

/// Forgeries: a sync label put on a foreign object by hand does not make it the sync's (not
/// changed, not pruned), nor does an inventory line added by hand. A lost status ConfigMap is
/// recovered from: the sync's own objects (its label and its field manager's apply) are its own
/// again, and pruning works after.
#[tokio::test]
async fn forged_labels_and_inventories_do_not_make_an_object_the_syncs() {
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    let id: Arc<[Identity]> = vec![Identity::generate()].into();
    let repo = Repo::new();
    let settings = repo.settings("forge", &ns);
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    repo.write("keep.yaml", &configmap(&ns, "keep", "one"));
    repo.write("drop.yaml", &configmap(&ns, "drop", "one"));
    repo.commit("first");
    pass(&env, &settings, &id).await.unwrap();

    // 1. A foreign object wearing the sync's label, declared by the commit: refused.
    foreign_configmap(&env, "forged", json!({SYNC_LABEL: "forge"}), json!({})).await;
    repo.write("forged.yaml", &configmap(&ns, "forged", "ours"));
    repo.commit("forged label");
    let err = pass(&env, &settings, &id).await.unwrap_err();
    assert!(sync::error_chain(&err).contains("forged.yaml"), "{err}");
    assert_eq!(mode(&cms.get("forged").await.unwrap()), "theirs");
    repo.remove("forged.yaml");
    repo.commit("no forged");

    // 2. The same object added to the inventory by hand, then not declared: not pruned.
    let cm_api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let st = status(&env, &settings).await;
    let inventory = format!("{}v1 ConfigMap {ns} forged\n", st["inventory"]);
    cm_api
        .patch(
            &settings.status_configmap(),
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"inventory": inventory}})),
        )
        .await
        .unwrap();
    pass(&env, &settings, &id).await.unwrap();
    assert_eq!(
        mode(&cms.get("forged").await.unwrap()),
        "theirs",
        "not pruned"
    );

    // 3. The status ConfigMap is lost: the next pass takes its own objects back, and a later
    //    commit that drops one prunes it.
    cm_api
        .delete(&settings.status_configmap(), &DeleteParams::default())
        .await
        .unwrap();
    repo.write("keep.yaml", &configmap(&ns, "keep", "two"));
    repo.commit("after the loss");
    pass(&env, &settings, &id).await.unwrap();
    assert_eq!(mode(&cms.get("keep").await.unwrap()), "two");
    assert!(status(&env, &settings).await["inventory"].contains("drop"));
    repo.remove("drop.yaml");
    repo.commit("drop");
    let r = pass(&env, &settings, &id).await.unwrap();
    assert_eq!(r.pruned, 1);
    assert!(cms.get_opt("drop").await.unwrap().is_none());
    assert_eq!(mode(&cms.get("forged").await.unwrap()), "theirs");
    env.cleanup().await;
}

/// A prune deletes with the uid it read: an object deleted and made again by someone else while
/// the delete was on its way (held at the server's door) survives.
#[tokio::test]
async fn a_prune_never_deletes_an_object_made_again_in_between() {
    let env = KubeEnv::new().await;
    let server = require_fake!(env);
    let ns = env.namespace.clone();
    let id: Arc<[Identity]> = vec![Identity::generate()].into();
    let repo = Repo::new();
    let settings = repo.settings("race", &ns);
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    repo.write("gone.yaml", &configmap(&ns, "gone", "one"));
    repo.write("kept.yaml", &configmap(&ns, "kept", "one"));
    repo.commit("first");
    pass(&env, &settings, &id).await.unwrap();
    repo.remove("gone.yaml");
    repo.commit("drop gone");

    let mut held = server.hold_next(
        &[kube_test_server::Method::DELETE],
        &format!("/api/v1/namespaces/{ns}/configmaps/gone"),
    );
    let (client, s2, id2) = (env.client.clone(), settings.clone(), id.clone());
    let running = tokio::spawn(async move { sync::pass(&client, &s2, id2).await });
    assert!(within("the prune's delete", PATIENCE, held.arrived()).await);
    cms.delete("gone", &DeleteParams::default()).await.unwrap();
    // Someone else's object, even wearing the sync's label.
    foreign_configmap(&env, "gone", json!({SYNC_LABEL: "race"}), json!({})).await;
    held.release();
    let report = within("the pass", PATIENCE, running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.pruned, 0);
    assert_eq!(mode(&cms.get("gone").await.unwrap()), "theirs");
    env.cleanup().await;
}

/// A commit whose second stage the server refuses leaves nothing behind: its new Namespace is
/// dry-run with everything else before stage one is applied, so it is not created either.
#[tokio::test]
async fn a_refused_commit_applies_nothing_not_even_its_namespace() {
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    let id: Arc<[Identity]> = vec![Identity::generate()].into();
    let new_ns = format!("t-refused-{}", random_suffix());
    let repo = Repo::new();
    repo.write(
        "ns.yaml",
        &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {new_ns}}}\n"),
    );
    // YAML 1.1 reads `yes` as a boolean, which a ConfigMap's data cannot hold.
    repo.write(
        "bad.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bad, namespace: {ns}}}\ndata: {{enabled: yes}}\n"),
    );
    repo.commit("refused");
    let settings = repo.settings("refused", &ns);
    let err = pass(&env, &settings, &id).await.unwrap_err();
    assert!(matches!(err, SyncError::DryRun { .. }), "{err}");
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    assert!(
        namespaces.get_opt(&new_ns).await.unwrap().is_none(),
        "the Namespace was created"
    );
    assert!(!status(&env, &settings).await["inventory"].contains(&new_ns));
    env.cleanup().await;
}

/// The API server refuses a `dockerconfigjson` value that is not JSON with a message quoting a
/// byte of it: sync's error, log and status name the field and reason only.
#[tokio::test]
async fn no_byte_of_a_refused_secret_reaches_the_sync_status() {
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    let id: Arc<[Identity]> = vec![Identity::generate()].into();
    let cluster = &id[0];
    let repo = Repo::new();
    let tail = format!("tail-{}", random_suffix());
    let value = format!("{{\"auths\":{{}}}}Q{tail}");
    repo.write(
        "regcred.yaml",
        &sealed_with(
            cluster,
            &ns,
            "regcred",
            "kubernetes.io/dockerconfigjson",
            &[(".dockerconfigjson", value.as_bytes())],
            &[],
            &[],
        ),
    );
    repo.commit("bad docker config");
    let settings = repo.settings("docker", &ns);
    let err = pass(&env, &settings, &id).await.unwrap_err();
    let text = sync::error_chain(&err);
    let debug = format!("{err:?}");
    let last_error = status(&env, &settings).await["lastError"].clone();
    for t in [&text, &debug, &last_error] {
        assert!(t.contains("data[.dockerconfigjson]"), "{t}");
        assert!(
            !t.contains("'Q'") && !t.contains("invalid character") && !t.contains(&tail),
            "the server's free text: {t}"
        );
    }
    env.cleanup().await;
}

/// A symlink whose target text is a manifest is not read by sync (kubectl on a checkout does not
/// read it either).
#[tokio::test]
async fn sync_skips_symlinks() {
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    let id: Arc<[Identity]> = vec![Identity::generate()].into();
    let repo = Repo::new();
    repo.write("real.yaml", &configmap(&ns, "real", "one"));
    std::os::unix::fs::symlink(
        configmap(&ns, "linked", "one"),
        repo.path().join("link.yaml"),
    )
    .unwrap();
    repo.commit("a symlink");
    let settings = repo.settings("links", &ns);
    let r = pass(&env, &settings, &id).await.unwrap();
    assert_eq!(r.applied, 1);
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    assert!(cms.get_opt("linked").await.unwrap().is_none());
    env.cleanup().await;
}
