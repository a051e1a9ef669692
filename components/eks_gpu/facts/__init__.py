"""Facts about AWS and EKS that the program bundles, each with its source: no Pulumi, no AWS calls."""
