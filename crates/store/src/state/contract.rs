//! The contract every state store implementation passes: run against SQLite and PostgreSQL by
//! `tests/contract.rs`. Each check takes a fresh, empty store and panics on a violation.

use super::{Expect, StateError, StateStore, Terms, Write};
use std::time::Duration;

/// Every check, by name, in order.
pub const CHECKS: &[&str] = &[
    "revisions_are_commit_sequences",
    "expectations_guard_whole_batches",
    "a_recreated_document_has_a_new_revision",
    "scans_page_in_byte_order",
    "the_change_log_has_whole_commits_in_order",
    "domains_have_their_own_logs",
    "the_watch_moves_on_commit",
    "concurrent_creates_of_one_key_succeed_once",
    "batches_are_bounded",
    "terms_find_documents_exactly_and_by_prefix",
    "set_terms_indexes_stored_documents",
];

/// Runs one check by name.
pub async fn run(name: &str, s: &StateStore) {
    match name {
        "revisions_are_commit_sequences" => revisions_are_commit_sequences(s).await,
        "expectations_guard_whole_batches" => expectations_guard_whole_batches(s).await,
        "a_recreated_document_has_a_new_revision" => a_recreated_document_has_a_new_revision(s).await,
        "scans_page_in_byte_order" => scans_page_in_byte_order(s).await,
        "the_change_log_has_whole_commits_in_order" => the_change_log_has_whole_commits_in_order(s).await,
        "domains_have_their_own_logs" => domains_have_their_own_logs(s).await,
        "the_watch_moves_on_commit" => the_watch_moves_on_commit(s).await,
        "concurrent_creates_of_one_key_succeed_once" => concurrent_creates_of_one_key_succeed_once(s).await,
        "batches_are_bounded" => batches_are_bounded(s).await,
        "terms_find_documents_exactly_and_by_prefix" => terms_find_documents_exactly_and_by_prefix(s).await,
        "set_terms_indexes_stored_documents" => set_terms_indexes_stored_documents(s).await,
        other => panic!("no contract check named {other}"),
    }
}

async fn revisions_are_commit_sequences(s: &StateStore) {
    let c1 = s.commit("d", vec![Write::put("k", "a", "1").expect(Expect::Absent)]).await.unwrap();
    assert_eq!(c1.seq, 1);
    let a = s.get("k", "a").await.unwrap().unwrap();
    assert_eq!((a.value.as_str(), a.rev), ("1", 1));
    let c2 = s.commit("d", vec![Write::put("k", "a", "2").expect(Expect::Rev(1)), Write::put("k", "b", "x")]).await.unwrap();
    assert_eq!(c2.seq, 2);
    assert_eq!(s.get("k", "a").await.unwrap().unwrap().rev, 2);
    assert_eq!(s.get("k", "b").await.unwrap().unwrap().rev, 2);
    assert_eq!(s.get("k", "missing").await.unwrap(), None);
    assert_eq!(s.get("other-kind", "a").await.unwrap(), None);
    assert_eq!(s.head("d").await.unwrap(), 2);
}

async fn expectations_guard_whole_batches(s: &StateStore) {
    s.commit("d", vec![Write::put("k", "a", "1")]).await.unwrap();
    let conflict = s.commit("d", vec![Write::put("k", "new", "n"), Write::put("k", "a", "2").expect(Expect::Absent)]).await.unwrap_err();
    match &conflict {
        StateError::Conflict { kind, key, expected, found } => {
            assert_eq!((kind.as_str(), key.as_str(), *expected, *found), ("k", "a", Expect::Absent, Some(1)));
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert!(conflict.to_string().contains("\"a\""), "{conflict}");
    assert_eq!(s.get("k", "new").await.unwrap(), None, "nothing of a failed batch is written");
    assert_eq!(s.get("k", "a").await.unwrap().unwrap().value, "1");
    assert!(s.commit("d", vec![Write::put("k", "a", "2").expect(Expect::Rev(7))]).await.unwrap_err().is_conflict());
    assert!(s.commit("d", vec![Write::delete("k", "zz").expect(Expect::Present)]).await.unwrap_err().is_conflict());
    // A check guards a batch without writing.
    assert!(s.commit("d", vec![Write::check("k", "a", Expect::Absent), Write::put("k", "c", "3")]).await.unwrap_err().is_conflict());
    assert_eq!(s.get("k", "c").await.unwrap(), None);
    let only_checks = s.commit("d", vec![Write::check("k", "a", Expect::Rev(1))]).await.unwrap();
    assert_eq!(only_checks.seq, 0, "a batch of checks changes nothing");
    assert_eq!(s.head("d").await.unwrap(), 1, "failed and check-only batches take no sequence");
    let ok = s.commit("d", vec![Write::put("k", "a", "2").expect(Expect::Rev(1))]).await.unwrap();
    assert_eq!(ok.seq, 2);
}

async fn a_recreated_document_has_a_new_revision(s: &StateStore) {
    s.commit("d", vec![Write::put("k", "a", "1")]).await.unwrap();
    s.commit("d", vec![Write::delete("k", "a").expect(Expect::Rev(1))]).await.unwrap();
    assert_eq!(s.get("k", "a").await.unwrap(), None);
    s.commit("d", vec![Write::put("k", "a", "again").expect(Expect::Absent)]).await.unwrap();
    let a = s.get("k", "a").await.unwrap().unwrap();
    assert_eq!(a.rev, 3, "revisions never repeat, so an old expectation cannot match a new document");
    assert!(s.commit("d", vec![Write::put("k", "a", "x").expect(Expect::Rev(1))]).await.unwrap_err().is_conflict());
}

async fn scans_page_in_byte_order(s: &StateStore) {
    let keys = ["b", "B", "a", "a-1", "a_1", "é", "z", "Z0"];
    s.commit("d", keys.iter().map(|k| Write::put("k", *k, format!("v{k}"))).collect()).await.unwrap();
    s.commit("d", vec![Write::put("other", "a", "x")]).await.unwrap();
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.scan("k", after.as_deref(), 3).await.unwrap();
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        after = page.last().map(|(k, _)| k.clone());
        seen.extend(page.into_iter().map(|(k, d)| {
            assert_eq!(d.value, format!("v{k}"));
            k
        }));
    }
    assert_eq!(seen, sorted);
    assert_eq!(s.scan_all("k").await.unwrap().len(), keys.len());
}

async fn the_change_log_has_whole_commits_in_order(s: &StateStore) {
    s.commit("d", vec![Write::put("k", "a", "1"), Write::put("k", "b", "1")]).await.unwrap();
    s.commit("d", vec![Write::delete("k", "a")]).await.unwrap();
    s.commit("d", vec![Write::put("k", "c", "1"), Write::put("j", "c", "2"), Write::put("k", "b", "2")]).await.unwrap();
    let all = s.changes("d", 0, 100).await.unwrap();
    assert_eq!((all.head, all.next, all.gap), (3, 3, false));
    let seen: Vec<(u64, &str, &str, Option<&str>)> = all.changes.iter().map(|c| (c.seq, c.kind.as_str(), c.key.as_str(), c.value.as_deref())).collect();
    assert_eq!(
        seen,
        vec![
            (1, "k", "a", Some("1")),
            (1, "k", "b", Some("1")),
            (2, "k", "a", None),
            (3, "k", "c", Some("1")),
            (3, "j", "c", Some("2")),
            (3, "k", "b", Some("2")),
        ]
    );
    let first = s.changes("d", 0, 1).await.unwrap();
    assert_eq!(first.next, 1);
    assert_eq!(first.changes.len(), 2, "a page holds whole commits");
    let rest = s.changes("d", 1, 100).await.unwrap();
    assert_eq!(rest.changes.first().map(|c| c.seq), Some(2));
    let none = s.changes("d", 3, 100).await.unwrap();
    assert!(none.changes.is_empty());
    assert_eq!((none.next, none.head, none.gap), (3, 3, false));
}

async fn domains_have_their_own_logs(s: &StateStore) {
    s.commit("one", vec![Write::put("k1", "a", "1")]).await.unwrap();
    s.commit("two", vec![Write::put("k2", "a", "1")]).await.unwrap();
    s.commit("one", vec![Write::put("k1", "b", "1")]).await.unwrap();
    assert_eq!(s.head("one").await.unwrap(), 2);
    assert_eq!(s.head("two").await.unwrap(), 1);
    assert_eq!(s.head("three").await.unwrap(), 0);
    let one = s.changes("one", 0, 10).await.unwrap();
    assert!(one.changes.iter().all(|c| c.kind == "k1"));
    assert_eq!(one.changes.len(), 2);
    let empty = s.changes("three", 0, 10).await.unwrap();
    assert_eq!((empty.changes.len(), empty.next, empty.head, empty.gap), (0, 0, 0, false));
}

async fn the_watch_moves_on_commit(s: &StateStore) {
    let mut w = s.watch("d");
    let other = s.watch("other");
    w.borrow_and_update();
    s.commit("d", vec![Write::put("k", "a", "1")]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), w.changed()).await.expect("the watch moves within 5 s").unwrap();
    let _ = other;
}

async fn concurrent_creates_of_one_key_succeed_once(s: &StateStore) {
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.commit("d", vec![Write::put("k", "one", format!("{i}")).expect(Expect::Absent)]).await }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => assert!(e.is_conflict(), "{e}"),
        }
    }
    assert_eq!(won, 1);
    // Concurrent writers of different keys all commit, each with its own sequence.
    let mut tasks = Vec::new();
    for i in 0..32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.commit("d", vec![Write::put("k", format!("many-{i}"), "v").expect(Expect::Absent)]).await.unwrap().seq }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (2..34).collect::<Vec<u64>>());
    let log = s.changes("d", 0, 1000).await.unwrap();
    assert_eq!(log.changes.len(), 33);
}

async fn batches_are_bounded(s: &StateStore) {
    let twice = s.commit("d", vec![Write::put("k", "a", "1"), Write::delete("k", "a")]).await.unwrap_err();
    assert!(matches!(twice, StateError::Invalid(ref m) if m.contains("\"a\"")), "{twice}");
    let big: Vec<Write> = (0..=super::MAX_WRITES_PER_COMMIT).map(|i| Write::put("k", format!("{i}"), "v")).collect();
    assert!(matches!(s.commit("d", big).await.unwrap_err(), StateError::Invalid(_)));
    assert_eq!(s.head("d").await.unwrap(), 0);
}

fn terms(ts: &[&str]) -> Vec<String> {
    ts.iter().map(|t| t.to_string()).collect()
}

async fn keys_found(s: &StateStore, kind: &str, t: Terms, page: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    loop {
        let found = s.find(kind, &t, out.last().map(String::as_str), page).await.unwrap();
        let done = found.len() < page;
        out.extend(found.into_iter().map(|(k, _)| k));
        if done {
            return out;
        }
    }
}

async fn terms_find_documents_exactly_and_by_prefix(s: &StateStore) {
    s.commit(
        "d",
        vec![
            Write::put("k", "b", "vb").terms(terms(&["t\u{1}x", "a\u{1}w\u{1}75"])),
            Write::put("k", "a", "va").terms(terms(&["t\u{1}x", "a\u{1}w\u{1}750", "a\u{1}w\u{1}7"])),
            Write::put("k", "c", "vc").terms(terms(&["t\u{1}xy", "a\u{1}w\u{1}8"])),
            Write::put("other", "a", "o").terms(terms(&["t\u{1}x"])),
        ],
    )
    .await
    .unwrap();
    let exact = s.find("k", &Terms::Exact("t\u{1}x".into()), None, 10).await.unwrap();
    assert_eq!(exact, vec![("a".to_string(), super::Doc { value: "va".into(), rev: 1 }), ("b".to_string(), super::Doc { value: "vb".into(), rev: 1 })]);
    assert_eq!(keys_found(s, "k", Terms::Exact("t\u{1}x".into()), 1).await, ["a", "b"], "an exact term is not a prefix");
    // "a" matches the prefix through two terms and is found once.
    assert_eq!(keys_found(s, "k", Terms::Prefix("a\u{1}w\u{1}7".into()), 1).await, ["a", "b"]);
    assert_eq!(keys_found(s, "k", Terms::Prefix("t\u{1}".into()), 2).await, ["a", "b", "c"]);
    // A put replaces the terms; a delete drops them.
    s.commit("d", vec![Write::put("k", "a", "va2").terms(terms(&["t\u{1}y"])), Write::delete("k", "b")]).await.unwrap();
    assert!(keys_found(s, "k", Terms::Exact("t\u{1}x".into()), 10).await.is_empty());
    assert_eq!(keys_found(s, "k", Terms::Exact("t\u{1}y".into()), 10).await, ["a"]);
    s.commit("d", vec![Write::put("k", "b", "again")]).await.unwrap();
    assert!(keys_found(s, "k", Terms::Prefix("a\u{1}".into()), 10).await == ["c"], "a re-created document starts without terms");
    // A check leaves the terms alone.
    s.commit("d", vec![Write::check("k", "a", Expect::Present), Write::put("k", "z", "z")]).await.unwrap();
    assert_eq!(keys_found(s, "k", Terms::Exact("t\u{1}y".into()), 10).await, ["a"]);
    let bad = s.commit("d", vec![Write::put("k", "n", "v").terms(terms(&["nul\0"]))]).await.unwrap_err();
    assert!(matches!(bad, StateError::Invalid(_)), "{bad}");
    let many = s.commit("d", vec![Write::put("k", "n", "v").terms((0..=super::MAX_TERMS_PER_DOC).map(|i| i.to_string()).collect())]).await.unwrap_err();
    assert!(matches!(many, StateError::Invalid(_)), "{many}");
}

async fn set_terms_indexes_stored_documents(s: &StateStore) {
    s.commit("d", vec![Write::put("k", "a", "1"), Write::put("k", "b", "2").terms(terms(&["old"]))]).await.unwrap();
    s.set_terms("k", vec![("a".into(), terms(&["new"])), ("b".into(), terms(&["new", "also"])), ("missing".into(), terms(&["new"]))]).await.unwrap();
    assert_eq!(keys_found(s, "k", Terms::Exact("new".into()), 10).await, ["a", "b"], "a key without a document gets no terms");
    assert!(keys_found(s, "k", Terms::Exact("old".into()), 10).await.is_empty());
    assert_eq!(s.head("d").await.unwrap(), 1, "setting terms is not a commit");
    assert_eq!(s.get("k", "b").await.unwrap().unwrap().rev, 1);
}
