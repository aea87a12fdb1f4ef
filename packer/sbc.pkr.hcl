# The SBC image: Debian 12 with Kamailio (TLS) and rtpengine, configured from
# a SIP profile and hardened. Run by the CodeBuild project (packer/buildspec.yml)
# with the values the pipeline resolved for this run; the same scripts build
# the local image in a chroot (functions/lib/local/rootfs.ts).
#
# The builder is reached over SSH through a temporary security group that
# admits only the builder's own public address (Packer looks it up, /32).
# Session Manager would need the SSM agent, which Debian's images do not
# carry.

packer {
  required_version = ">= 1.11.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = "= 1.3.10"
    }
  }
}

variable "region" {
  type        = string
  description = "AWS region of the build and of the image."
}

variable "run_id" {
  type        = string
  description = "Pipeline run id: tags what the build creates, names the manifest entry."
  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,63}$", var.run_id))
    error_message = "The run_id must be 1-64 letters, digits or hyphens."
  }
}

variable "profile_name" {
  type        = string
  description = "Name of the SIP profile the image is built from."
  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", var.profile_name))
    error_message = "The profile_name must be 1-64 letters, digits, dots, underscores or hyphens."
  }
}

variable "profile_digest" {
  type        = string
  description = "SHA-256 (hex) of the SIP profile bytes."
  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.profile_digest))
    error_message = "The profile_digest must be a SHA-256 in lowercase hex."
  }
}

variable "template_digest" {
  type        = string
  description = "SHA-256 (hex) of the Packer template and provisioning files."
  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.template_digest))
    error_message = "The template_digest must be a SHA-256 in lowercase hex."
  }
}

variable "source_revision" {
  type        = string
  description = "Source revision (commit) of the pipeline that builds the image."
}

variable "base_image_id" {
  type        = string
  description = "The Debian 12 image the pipeline resolved and allowed; the only one used."
  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.base_image_id))
    error_message = "The base_image_id must be an AMI id (ami-...)."
  }
}

variable "kms_key_id" {
  type        = string
  description = "KMS key (id, alias or ARN) that encrypts the image's snapshots."
  validation {
    condition     = length(var.kms_key_id) > 0
    error_message = "The kms_key_id must name a KMS key: the image is always encrypted."
  }
}

variable "instance_type" {
  type        = string
  default     = "t3.small"
  description = "EC2 instance type of the builder."
}

variable "root_volume_gib" {
  type        = number
  default     = 8
  description = "Size of the image's root volume (gp3), GiB."
}

variable "subnet_id" {
  type        = string
  default     = null
  description = "Subnet of the builder (public address needed); the default VPC when unset."
}

variable "deprecate_after_days" {
  type        = number
  default     = 180
  description = "Days after which EC2 marks the image deprecated."
}

variable "staging_dir" {
  type        = string
  default     = "build/sbc-ami"
  description = "Local folder uploaded as /tmp/sbc-ami; rendered/ holds the profile's tree."
  validation {
    condition     = basename(var.staging_dir) == "sbc-ami"
    error_message = "The staging_dir must be a folder named sbc-ami (uploaded as /tmp/sbc-ami)."
  }
}

locals {
  # One set of provenance tags on the builder, its volumes, the image and
  # its snapshots. Keys: functions/lib/constants.ts.
  provenance_tags = {
    "ManagedBy"               = "sbc-ami-pipeline"
    "sbc-ami:run-id"          = var.run_id
    "sbc-ami:profile"         = var.profile_name
    "sbc-ami:profile-digest"  = var.profile_digest
    "sbc-ami:template-digest" = var.template_digest
    "sbc-ami:source-revision" = var.source_revision
    "sbc-ami:base-image-id"   = var.base_image_id
  }
  image_name   = "sbc-${var.profile_name}-${var.run_id}"
  deprecate_at = timeadd(timestamp(), "${var.deprecate_after_days * 24}h")
  staging_dir  = abspath(var.staging_dir)
}

source "amazon-ebs" "sbc" {
  region        = var.region
  instance_type = var.instance_type
  subnet_id     = var.subnet_id

  # Debian's own account only, and only the image the pipeline resolved.
  source_ami_filter {
    owners      = ["136693071363"]
    most_recent = true
    filters = {
      name                = "debian-12-amd64-*"
      image-id            = var.base_image_id
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
  }

  ami_name                = local.image_name
  ami_description         = "SBC, profile ${var.profile_name}, run ${var.run_id}"
  ami_virtualization_type = "hvm"
  ena_support             = true
  deprecate_at            = local.deprecate_at
  # Private image: no ami_groups, no ami_users, no snapshot sharing.
  encrypt_boot = true
  kms_key_id   = var.kms_key_id
  imds_support = "v2.0"

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.root_volume_gib
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    encrypted             = true
    kms_key_id            = var.kms_key_id
    delete_on_termination = true
  }

  # The builder itself answers IMDSv2 only.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  communicator                              = "ssh"
  ssh_username                              = "admin"
  ssh_interface                             = "public_ip"
  ssh_timeout                               = "10m"
  associate_public_ip_address               = true
  temporary_key_pair_type                   = "ed25519"
  temporary_security_group_source_public_ip = true

  # Registering and snapshotting an encrypted image takes a while: up to
  # 60 minutes at 15-second polls instead of the SDK's shorter default.
  aws_polling {
    delay_seconds = 15
    max_attempts  = 240
  }

  run_tags        = local.provenance_tags
  run_volume_tags = local.provenance_tags
  tags            = merge(local.provenance_tags, { Name = local.image_name })
  snapshot_tags   = local.provenance_tags
}

build {
  name    = "sbc"
  sources = ["source.amazon-ebs.sbc"]

  # The tree rendered from the SIP profile, then the static files, both as
  # /tmp/sbc-ami/{rendered,files}: where the scripts look for them.
  provisioner "file" {
    source      = local.staging_dir
    destination = "/tmp"
  }

  provisioner "file" {
    source      = "${path.root}/files"
    destination = "/tmp/sbc-ami"
  }

  provisioner "shell" {
    script           = "${path.root}/scripts/10-packages.sh"
    execute_command  = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    environment_vars = ["SBC_STAGING_DIR=/tmp/sbc-ami"]
  }

  provisioner "shell" {
    script           = "${path.root}/scripts/20-install-tree.sh"
    execute_command  = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    environment_vars = ["SBC_STAGING_DIR=/tmp/sbc-ami"]
  }

  provisioner "shell" {
    script           = "${path.root}/scripts/30-hardening.sh"
    execute_command  = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    environment_vars = ["SBC_STAGING_DIR=/tmp/sbc-ami"]
  }

  provisioner "shell" {
    script           = "${path.root}/scripts/40-scrub.sh"
    execute_command  = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    environment_vars = ["SBC_STAGING_DIR=/tmp/sbc-ami"]
  }

  # Last: prints expected against actual and fails the build on a mismatch,
  # before any image is registered.
  provisioner "shell" {
    script           = "${path.root}/scripts/90-validate.sh"
    execute_command  = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    environment_vars = ["SBC_STAGING_DIR=/tmp/sbc-ami"]
  }

  post-processor "manifest" {
    output     = "packer-manifest.json"
    strip_path = true
    custom_data = {
      run_id          = var.run_id
      profile         = var.profile_name
      profile_digest  = var.profile_digest
      template_digest = var.template_digest
      source_revision = var.source_revision
      base_image_id   = var.base_image_id
    }
  }
}
