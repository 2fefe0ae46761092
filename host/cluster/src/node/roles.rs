//! Roles checked on every peer-to-peer request, over real libp2p on 127.0.0.1: in a closed
//! cluster, a member that is neither a job's coordinator nor given one of its tasks cannot
//! command the job's workers or fetch the job's blobs, and the job runs on undisturbed.

use crate::blobs::blob_id;
use crate::messages::{Request, Response, TrainTask};
use crate::testing::{closed_nodes, offering};
use crate::{EventKind, JobEvent};
use bytes::Bytes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_jobs_coordinator_commands_it_and_only_its_assigned_peers_get_its_blobs() {
    let op = infra_trust::OperatorKey::generate().unwrap();
    // Node 2 offers less memory than a task needs: the scheduler gives it no task, so it is
    // a member with no part in the job.
    let nodes = closed_nodes(3, &op, |i| offering(if i == 2 { 64 } else { 1024 })).await;
    let (coordinator, worker, outsider) = (&nodes[0], &nodes[1], &nodes[2]);
    let spec = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/digits-cluster.toml"),
    )
    .unwrap()
    .replace("rounds = 10", "rounds = 3");
    let rec = coordinator.submit(&spec, None).unwrap();
    let (past, mut live) = coordinator.job(&rec.id).unwrap().subscribe();
    let mut evs: Vec<JobEvent> = past;
    while !evs.iter().any(|e| e.kind == EventKind::Round) {
        evs.push(live.recv().await.unwrap());
    }
    let spec_blob = blob_id(spec.as_bytes());

    // The worker trains for the coordinator; a task for the same job from the outsider is
    // refused, and so is its Forget.
    let task = TrainTask {
        job: rec.id.clone(),
        round: 99,
        task: "r99-shard0".into(),
        spec: spec_blob.clone(),
        global: None,
        shard: spec_blob.clone(),
        seed: 0,
    };
    let ask = |req: Request| {
        let frame = req.to_frame_with(Bytes::new());
        async move {
            let frame = outsider
                .net()
                .request(worker.peer_id(), frame)
                .await
                .unwrap();
            Response::from_frame(&frame)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        }
    };
    // The job's id is bound to its coordinator's peer id, so no worker has to be told who
    // that is, and no other member can pass for it.
    let coord = coordinator.peer_id().to_string();
    let them = outsider.peer_id().to_string();
    assert!(crate::jobs::made_by(&rec.id, &coord));
    assert!(!crate::jobs::made_by(&rec.id, &them));
    let refused = format!("job {} is not coordinated by {them}", rec.id);
    let e = ask(Request::Train(Box::new(task))).await;
    assert!(e.contains(&refused), "{e}");
    let e = ask(Request::Forget {
        job: rec.id.clone(),
    })
    .await;
    assert!(e.contains(&refused), "{e}");
    // Nor may it make the coordinator forget its own job.
    let frame = outsider
        .net()
        .request(
            coordinator.peer_id(),
            Request::Forget {
                job: rec.id.clone(),
            }
            .to_frame(),
        )
        .await
        .unwrap();
    let e = Response::from_frame(&frame).unwrap_err().to_string();
    assert!(e.contains(&refused), "{e}");

    // A shard the worker was given is served to it, not to the outsider.
    let shards: Vec<String> = worker
        .inner
        .worker
        .held_for(&rec.id)
        .into_iter()
        .filter(|b| *b != spec_blob)
        .collect();
    assert!(
        !shards.is_empty(),
        "the worker holds the shards it trained on"
    );
    for shard in &shards {
        let ask = |who: &crate::ClusterNode| {
            let (net, to) = (who.net().clone(), coordinator.peer_id());
            let frame = Request::Manifest {
                blob: shard.clone(),
            }
            .to_frame();
            async move { Response::from_frame(&net.request(to, frame).await.unwrap()) }
        };
        assert!(matches!(ask(worker).await, Ok(Response::Manifest(_))));
        let e = ask(outsider).await.unwrap_err().to_string();
        assert!(
            e.contains(&format!("blob {shard} is not served to peer")),
            "{e}"
        );
    }

    // The job's spec is served to the worker it assigned tasks to, not to the outsider:
    // neither its manifest nor its chunks.
    let manifest = |who: &crate::ClusterNode| {
        let net = who.net().clone();
        let id = spec_blob.clone();
        let to = coordinator.peer_id();
        async move {
            let f = net
                .request(to, Request::Manifest { blob: id }.to_frame())
                .await
                .unwrap();
            Response::from_frame(&f)
        }
    };
    let Ok(Response::Manifest(m)) = manifest(worker).await else {
        panic!("the assigned worker cannot read the spec's manifest");
    };
    let e = manifest(outsider).await.unwrap_err().to_string();
    assert!(e.contains("is not served to peer"), "{e}");
    let mut dst = Vec::new();
    let e = crate::transfer::stream::fetch_chunks(
        outsider.net(),
        coordinator.peer_id(),
        &spec_blob,
        &m,
        &[0],
        &mut dst,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("is not served to peer"), "{e}");
    let e = crate::transfer::fetch(
        outsider.net(),
        outsider.store(),
        outsider.links(),
        coordinator.peer_id(),
        &spec_blob,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("is not served to peer"), "{e}");

    // The job runs to its end regardless, on the two peers that have room for its tasks.
    while !evs.last().is_some_and(|e| e.kind.is_terminal()) {
        evs.push(live.recv().await.unwrap());
    }
    assert_eq!(evs.last().unwrap().kind, EventKind::Done, "{evs:#?}");
    let rounds: Vec<&JobEvent> = evs.iter().filter(|e| e.kind == EventKind::Round).collect();
    assert_eq!(rounds.len(), 3);
    assert!(rounds.iter().all(|e| e.peers == 2), "{evs:#?}");
    assert_eq!(
        outsider.store().usage().0,
        0,
        "the outsider holds none of the job's blobs"
    );
}
