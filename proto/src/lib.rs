//! The Xiaoneng contract, generated from the `.proto` files beside this crate.
//!
//! Modules mirror the protobuf packages under `xiaoneng.`: `catalog::v1` is
//! `xiaoneng.catalog.v1`, `catalog::events::v1` is `xiaoneng.catalog.events.v1`.
#![allow(clippy::all)]

/// Encoded `FileDescriptorSet` of every package, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("xiaoneng_descriptor");

macro_rules! service_packages {
    ($($svc:ident),*) => {$(
        pub mod $svc {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/xiaoneng.", stringify!($svc), ".v1.rs"));
            }
            pub mod events {
                pub mod v1 {
                    include!(concat!(env!("OUT_DIR"), "/xiaoneng.", stringify!($svc), ".events.v1.rs"));
                }
            }
        }
    )*};
}

service_packages!(catalog, queue, case, evaluation, complaint, accountability);

/// Fully-qualified gRPC service names, as health checking and reflection know them.
pub mod service_names {
    pub const CATALOG: &str = "xiaoneng.catalog.v1.CatalogService";
    pub const QUEUE: &str = "xiaoneng.queue.v1.QueueService";
    pub const CASE: &str = "xiaoneng.case.v1.CaseService";
    pub const EVALUATION: &str = "xiaoneng.evaluation.v1.EvaluationService";
    pub const COMPLAINT: &str = "xiaoneng.complaint.v1.ComplaintService";
    pub const ACCOUNTABILITY: &str = "xiaoneng.accountability.v1.AccountabilityService";
}
