"""Karpenter's pinned release: the ``karpenter`` and ``karpenter-crd`` charts the program installs.

Source: aws/karpenter-provider-aws, ``charts/karpenter`` and ``charts/karpenter-crd`` at 1d92708 ("update
for patch release v1.14.1"), whose ``Chart.yaml`` say ``version: 1.14.1``, ``appVersion: 1.14.1``; the
same files are in ``../shared/charts/karpenter-1.14.1`` and ``karpenter-crd-1.14.1`` (README there),
which the tests render. Both are published as OCI charts (``oci://public.ecr.aws/karpenter/...``).
"""

from __future__ import annotations

CHART_VERSION = "1.14.1"
"""The ``karpenter`` and ``karpenter-crd`` chart version (both charts are released together)."""
CHART_REPOSITORY = "oci://public.ecr.aws/karpenter"
"""Where both charts are published: ``<repository>/karpenter``, ``<repository>/karpenter-crd``."""
SOURCE = "aws/karpenter-provider-aws charts/karpenter, charts/karpenter-crd at 1d92708 (v1.14.1)"
"""Where :data:`CHART_VERSION` comes from."""
DISCOVERY_TAG = "karpenter.sh/discovery"
"""The tag, valued with the cluster's name, that Karpenter's getting-started guide puts on the subnets and the
security group nodes launch into, for EC2NodeClasses that select them by tag (``subnetSelectorTerms: [{tags:
{karpenter.sh/discovery: <cluster>}}]``; aws/karpenter-provider-aws ``website/content/en/v1.14/getting-started/
migrating-from-cas/_index.md``, "Add tags to subnets and security groups"). The program's own EC2NodeClasses
select by id; the tag is for the node classes a platform team adds (docs/karpenter.md)."""
INTERRUPTION_QUEUE_TAG = "karpenter-interruptions"
"""The interruption queue's ``Name`` tag is ``<cluster>-karpenter-interruptions``: what tells this stack's queue
(from an earlier ``pulumi up``) from another Karpenter install's queue of the same name (the cluster's)."""
