//! The protobuf contract lints clean under buf's STANDARD rules (formerly DEFAULT).

use std::path::Path;
use std::process::Command;

#[test]
fn buf_lint_is_clean() {
    let buf = std::env::var("XIAONENG_BUF").ok().filter(|b| !b.is_empty()).unwrap_or_else(|| "buf".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(&buf)
        .arg("lint")
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {buf} ({e}); ./scripts/test installs it"));
    assert!(
        out.status.success(),
        "buf lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends and takes message bytes as they are: any method can be called without its types.
#[derive(Clone, Copy, Default)]
struct Raw;

impl tonic::codec::Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl tonic::codec::Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

/// The README's table of the calls that answer without a token, per service.
fn readme_public_calls() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let table =
        readme.split("| service | answers without a token |").nth(1).expect("the README's table of public calls");
    let mut out = std::collections::BTreeMap::new();
    for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let methods = cells[2].split('`').skip(1).step_by(2).map(str::to_string).collect();
        out.insert(cells[1].to_string(), methods);
    }
    out
}

/// Every method of every service called without a token: the ones that do not answer
/// UNAUTHENTICATED are exactly the README's table of public calls (the methods come from the
/// services' own descriptors, so a new public call cannot go unlisted, nor a listed one be
/// protected).
#[tokio::test(flavor = "multi_thread")]
async fn the_calls_that_answer_without_a_token_are_the_readmes() {
    use prost::Message as _;
    use xiaoneng_e2e::{shared_brokers, ServiceProc};
    use xiaoneng_kit::ServiceKind;
    let files = prost_types::FileDescriptorSet::decode(xiaoneng_e2e::proto::FILE_DESCRIPTOR_SET).unwrap();
    let brokers = shared_brokers();
    let mut seen = std::collections::BTreeMap::new();
    for kind in ServiceKind::ALL {
        let s = ServiceProc::start(kind, &brokers).await;
        let full = kind.grpc_service();
        let (package, name) = full.rsplit_once('.').unwrap();
        let methods: Vec<String> = files
            .file
            .iter()
            .filter(|f| f.package() == package)
            .flat_map(|f| f.service.iter())
            .filter(|svc| svc.name() == name)
            .flat_map(|svc| svc.method.iter().map(|m| m.name().to_string()))
            .collect();
        assert!(methods.len() > 3, "{full}: {methods:?}");
        let channel = tonic::transport::Channel::from_shared(s.addr()).unwrap().connect().await.unwrap();
        let mut public = std::collections::BTreeSet::new();
        for m in methods {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.unwrap();
            let path: tonic::codegen::http::uri::PathAndQuery = format!("/{full}/{m}").parse().unwrap();
            let call = grpc.unary(tonic::Request::new(Vec::new()), path, Raw);
            // A public stream may stay open: it answered, whatever it says next.
            let code = match tokio::time::timeout(std::time::Duration::from_secs(5), call).await {
                Ok(r) => r.err().map_or(tonic::Code::Ok, |e| e.code()),
                Err(_) => tonic::Code::Ok,
            };
            if code != tonic::Code::Unauthenticated {
                public.insert(m);
            }
        }
        seen.insert(kind.name().to_string(), public);
    }
    assert_eq!(seen, readme_public_calls());
}
