"""eks-gpu's components: one module per AWS or Kubernetes concern."""
