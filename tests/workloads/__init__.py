"""GPU workloads as users write them, and offline reproductions of what a cluster does with them.

The corpus (``corpus/*.yaml``) is placed on each GPU pool of a stack the way a user would, then held
against reproductions of the Kubernetes and Cluster Autoscaler code that decides its fate:

* :mod:`.resources`: quantities and the requests a pod makes (API defaulting, ``PodRequests``);
* :mod:`.admission`: LimitRanger, resource validation, ResourceQuota;
* :mod:`.psa`: Pod Security admission, baseline and restricted;
* :mod:`.netpol`: NetworkPolicy semantics;
* :mod:`.scheduling`: the scheduler's filters a pod must pass on a node;
* :mod:`.autoscaler`: the Cluster Autoscaler's template node for an AWS ASG;
* :mod:`.corpus` and :mod:`.stack`: the workloads, their placement, and what a program run sent;
* :mod:`.verdict`: the four questions of issue 20 part 6, asked of one workload on one pool.
"""
