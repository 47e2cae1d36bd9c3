# Packer alternative to `specfleet ami bake`:
#   packer init ami/ && packer build -var region=us-east-1 ami/packer.pkr.hcl
packer {
  required_plugins {
    amazon = {
      version = ">= 1.3.0"
      source  = "github.com/hashicorp/amazon"
    }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  type    = string
  default = "c6i.large"
}

variable "specfleet_source" {
  type        = string
  description = "the specfleet wheel: a URL (e.g. `pip wheel . --no-deps -w dist` uploaded to S3) or `specfleet @ URL#sha256=...`"
}

variable "pipelines" {
  type        = list(string)
  description = "pipelines the image runs (decides the Debian packages; see provision.sh)"
  default     = ["echo", "hydrophone", "search", "download", "spectrogram"]
}

variable "copy_to_regions" {
  type    = list(string)
  default = []
}

source "amazon-ebs" "worker" {
  region        = var.region
  instance_type = var.instance_type
  ami_name      = "specfleet-worker-{{timestamp}}"
  ssh_username  = "admin"
  ami_regions   = var.copy_to_regions

  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["136693071363"] # Debian
    most_recent = true
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = 30
    volume_type           = "gp3"
    encrypted             = true
    delete_on_termination = true
  }

  tags = {
    Name                = "specfleet-worker"
    "specfleet:role"    = "worker-ami"
    "specfleet:builder" = "packer"
  }
}

build {
  sources = ["source.amazon-ebs.worker"]

  # provision.sh finds the unit file (its one source) and the hashed lock
  # next to itself.
  provisioner "shell" {
    inline = ["mkdir -p /tmp/specfleet-ami"]
  }

  provisioner "file" {
    sources = [
      "${path.root}/provision.sh",
      "${path.root}/specfleet-worker@.service",
      "${path.root}/requirements.lock",
    ]
    destination = "/tmp/specfleet-ami/"
  }

  provisioner "shell" {
    environment_vars = [
      "SPECFLEET_SOURCE=${var.specfleet_source}",
      "SPECFLEET_PIPELINES=${join(" ", var.pipelines)}",
    ]
    execute_command = "sudo -E bash '{{ .Path }}'"
    inline          = ["bash /tmp/specfleet-ami/provision.sh"]
  }
}
