"""Aurora backup failures reach the alert topic: RDS reports them as events, not metrics, so an
EventBridge rule matching them publishes to the topic, whose policy lets that rule (only) in."""

from __future__ import annotations

import json

from pulumi_harness import StackRun

RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"


def test_backup_failure_events_of_this_cluster_are_sent_to_the_alert_topic(
    stack: StackRun,
) -> None:
    rule = stack.named(RULE, "aurora-backup-failures").inputs
    pattern = json.loads(rule["eventPattern"])
    assert pattern["source"] == ["aws.rds"]
    assert set(pattern["detail-type"]) == {"RDS DB Cluster Event", "RDS DB Instance Event"}
    detail = pattern["detail"]
    assert detail["EventCategories"] == ["backup"]
    assert {"wildcard": "*fail*"} in detail["Message"]
    # This stack's cluster and its instances, not every database in the account.
    cluster = stack.named("aws:rds/cluster:Cluster", "aurora").inputs["clusterIdentifier"]
    instances = [
        r.inputs["identifier"] for r in stack.of_type("aws:rds/clusterInstance:ClusterInstance")
    ]
    assert instances
    assert set(detail["SourceIdentifier"]) == {cluster, *instances}

    target = stack.named(TARGET, "aurora-backup-failures-alert").inputs
    assert target["rule"] == rule["name"]
    assert target["arn"] == stack.arn_of("aws:sns/topic:Topic", "alerts")


def test_the_alert_topic_lets_only_the_backup_rule_publish_through_eventbridge(
    stack: StackRun,
) -> None:
    policy = json.loads(
        stack.named("aws:sns/topicPolicy:TopicPolicy", "alerts-policy").inputs["policy"]
    )
    topic = stack.arn_of("aws:sns/topic:Topic", "alerts")
    (statement,) = [
        s for s in policy["Statement"] if s["Principal"]["Service"] == "events.amazonaws.com"
    ]
    assert statement["Action"] == "sns:Publish"
    assert statement["Resource"] == topic
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": stack.arn_of(RULE, "aurora-backup-failures")}
    }
