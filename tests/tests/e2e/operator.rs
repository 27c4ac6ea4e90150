//! The operator tool (`xiaoneng-admin`) says what it did and refuses what it cannot do: an
//! unknown role is no token, a wait for no address is an error, and creating the topics tells
//! the ones it created from the ones that were there.

use std::process::{Command, Output};

use xiaoneng_e2e::{bin_dir, Broker};

fn admin(args: &[&str], brokers: &str) -> Output {
    Command::new(bin_dir().join("xiaoneng-admin"))
        .args(args)
        .env("XIAONENG__KAFKA__BROKERS", brokers)
        .env_remove("XIAONENG_CONFIG")
        .output()
        .expect("xiaoneng-admin")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).trim().to_string()
}

#[test]
fn mint_token_refuses_a_role_that_does_not_exist() {
    let bad = admin(&["mint-token", "--sub", "u1", "--roles", "clerk,nosuchrole", "--region", "410702"], "127.0.0.1:9");
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stdout).is_empty(), "no token printed");
    assert!(text(&bad.stderr).contains("\"nosuchrole\" is no role"), "{}", text(&bad.stderr));
    let good = admin(
        &["mint-token", "--sub", "u1", "--roles", "clerk", "--region", "410702", "--dept", "SCJGJ"],
        "127.0.0.1:9",
    );
    assert!(good.status.success(), "{}", text(&good.stderr));
    let token = text(&good.stdout);
    let caller =
        xiaoneng_kit::auth::TokenVerifier::new(&xiaoneng_e2e::settings().auth).verify(&token).expect("a token of ours");
    assert_eq!((caller.roles, caller.department.as_deref()), (vec!["clerk".to_string()], Some("SCJGJ")));
}

#[test]
fn wait_serving_without_an_address_is_an_error() {
    let o = admin(&["wait-serving", "--timeout", "1"], "127.0.0.1:9");
    assert!(!o.status.success(), "waiting for nothing must not succeed silently");
    assert!(text(&o.stderr).contains("addrs") || text(&o.stderr).contains("ADDRS"), "{}", text(&o.stderr));
}

#[test]
fn create_topics_says_which_it_created_and_which_existed() {
    let broker = Broker::start();
    let first = admin(&["create-topics"], &broker.brokers());
    assert!(first.status.success(), "{}", text(&first.stderr));
    let lines = text(&first.stdout);
    assert_eq!(lines.lines().count(), xiaoneng_kit::ServiceKind::ALL.len(), "{lines}");
    assert!(lines.lines().all(|l| l.ends_with(" created")), "{lines}");
    let again = admin(&["create-topics"], &broker.brokers());
    let lines = text(&again.stdout);
    assert!(again.status.success() && lines.lines().all(|l| l.ends_with(" exists")), "{lines}");
}
