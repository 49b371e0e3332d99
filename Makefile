# scipion_cloud: one command to test, one to try the product.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

VENV ?= .venv
CACHE_DIR ?= $(or $(SCIPION_CLOUD_CACHE),$(HOME)/.cache/scipion_cloud)
BASE_IMAGE ?= localhost/scipion-cloud/debian12-systemd:latest
# Debian 11 (Python 3.9): the target of the legacy runner's tests, standing in for Ubuntu 16.04.
LEGACY_BASE_IMAGE ?= localhost/scipion-cloud/debian11-systemd:latest
LEGACY_VENV ?= .venv-legacy
SCENARIO ?=
PYTEST_ARGS ?=

export SCIPION_CLOUD_CACHE := $(CACHE_DIR)
export BASE_IMAGE
export LEGACY_BASE_IMAGE
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# The podman probe (scripts/podman-conf.sh) records whether podman needs our config.
PODMAN_MODE_FILE := $(CACHE_DIR)/podman-mode
ifeq ($(shell cat $(PODMAN_MODE_FILE) 2>/dev/null),project)
export CONTAINERS_CONF := $(CURDIR)/tests/podman/containers.conf
endif

REQ_HASH := $(shell cat requirements.txt requirements-test.txt | sha256sum | cut -c1-12)
VENV_STAMP := $(VENV)/.installed-$(REQ_HASH)
LEGACY_REQ_HASH := $(shell sha256sum requirements-legacy.txt | cut -c1-12)
LEGACY_VENV_STAMP := $(LEGACY_VENV)/.installed-$(LEGACY_REQ_HASH)
COLLECTION_LINK := collections/ansible_collections/i2pc/scipion_cloud
SCENARIOS = $(if $(SCENARIO),$(SCENARIO),$(ALL_SCENARIOS))

.PHONY: help setup legacy-runner system-packages base-image test checks checks-api checks-containers lint unit provider e2e molecule bench demo demo-down build clean

help:
	@echo "make demo      bring up the local demo course (see README)"
	@echo "make test      set up everything, then lint, unit, provider and molecule tests"
	@echo "make lint | unit | provider | molecule [SCENARIO=name] | e2e | bench | build"
	@echo "make demo-down remove the demo course"

## Setup: everything a fresh clone needs; seconds when already done.
setup: system-packages $(VENV_STAMP) legacy-runner $(COLLECTION_LINK) base-image $(PODMAN_MODE_FILE)

# The second, pinned ansible-core that configures machines whose Python is too old for the
# main one (Ubuntu 16.04): configure.yml, image.yml and verify.yml hand such machines to it.
legacy-runner: $(LEGACY_VENV_STAMP)

$(LEGACY_VENV_STAMP): requirements-legacy.txt
	@echo "legacy runner: installing requirements-legacy.txt into $(LEGACY_VENV)"
	test -x $(LEGACY_VENV)/bin/python || python3 -m venv $(LEGACY_VENV)
	$(LEGACY_VENV)/bin/pip install -q -r requirements-legacy.txt 2>&1 | grep -v '^WARNING: Location' || true
	$(LEGACY_VENV)/bin/pip check >/dev/null
	$(LEGACY_VENV)/bin/python -c 'from ansible.release import __version__; print("legacy runner: ansible-core", __version__)'
	rm -f $(LEGACY_VENV)/.installed-*
	touch $@

system-packages:
	@scripts/system-packages.sh

$(VENV_STAMP): requirements.txt requirements-test.txt
	@echo "venv: installing pinned Python dependencies into $(VENV)"
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(VENV)/bin/pip install -q -r requirements-test.txt 2>&1 | grep -v '^WARNING: Location' || true
	$(VENV)/bin/pip check >/dev/null
	rm -f $(VENV)/.installed-*
	touch $@

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

base-image: system-packages
	@scripts/base-image.sh
	@BASE_IMAGE=$(LEGACY_BASE_IMAGE) DEBIAN_SUITE=bullseye scripts/base-image.sh

$(PODMAN_MODE_FILE): | base-image
	@mkdir -p $(CACHE_DIR)
	scripts/podman-conf.sh $@

## Tests
test:
	@start=$$(date +%s)
	$(MAKE) --no-print-directory setup
	echo "setup: $$(( $$(date +%s) - start )) s"
	$(MAKE) --no-print-directory checks
	echo "make test: passed in $$(( $$(date +%s) - start )) s"

# Two streams side by side, balanced by measured time: the API side runs the provider tests
# (Python on the controller), the container side lint and unit, every molecule scenario, the demo
# end to end, then the AWS image bake's provider tests (PROVIDER_TESTS_ON_CONTAINERS). Lines are
# prefixed by stream; each step's whole output is in output/checks/<step>.log.
ALL_SCENARIOS := $(filter-out default,$(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))))

checks: setup
	rm -rf $(CHECKS_LOG) && mkdir -p $(CHECKS_LOG)
	rc=0
	$(MAKE) --no-print-directory -j2 -k checks-api checks-containers || rc=$$?
	# Both streams interleave above; repeat what failed, with the end of its own output.
	for step in $$(cat $(CHECKS_LOG)/failed 2>/dev/null); do
	  echo "=== FAILED: $$step (whole output: $(CHECKS_LOG)/$$step.log); its last 60 lines:"
	  tail -n 60 $(CHECKS_LOG)/$$step.log
	done
	exit $$rc

# A step of a stream: its output also goes to $(CHECKS_LOG)/<step>.log, and a failure is noted.
CHECKS_LOG := output/checks
define checks_step
{ $(MAKE) --no-print-directory $(2) 2>&1 | tee $(CHECKS_LOG)/$(1).log || { echo $(1) >> $(CHECKS_LOG)/failed; false; }; }
endef

checks-api:
	@start=$$(date +%s)
	mkdir -p $(CHECKS_LOG)
	{ rc=0
	  $(call checks_step,provider,provider PROVIDER_TESTS="tests/provider $(addprefix --ignore=,$(PROVIDER_TESTS_ON_CONTAINERS))") || rc=1
	  exit $$rc; } 2>&1 | sed -u 's/^/[api] /'
	echo "[api] provider (all but $(notdir $(PROVIDER_TESTS_ON_CONTAINERS))): passed in $$(( $$(date +%s) - start )) s"

checks-containers:
	@start=$$(date +%s)
	mkdir -p $(CHECKS_LOG)
	{ rc=0
	  $(call checks_step,lint,lint) || rc=1
	  $(call checks_step,unit,unit) || rc=1
	  $(call checks_step,molecule-containers,molecule SCENARIO="$(ALL_SCENARIOS)") || rc=1
	  $(call checks_step,e2e,e2e) || rc=1
	  $(call checks_step,provider-images,provider PROVIDER_TESTS="$(PROVIDER_TESTS_ON_CONTAINERS)") || rc=1
	  exit $$rc; } 2>&1 | sed -u 's/^/[containers] /'
	echo "[containers] lint, unit, molecule $(ALL_SCENARIOS), e2e, $(notdir $(PROVIDER_TESTS_ON_CONTAINERS)): passed in $$(( $$(date +%s) - start )) s"

lint: setup
	yamllint --strict .
	ansible-lint --offline -q
	# The playbooks and roles the legacy runner runs, parsed by its own ansible-core.
	ANSIBLE_INVENTORY_ENABLED=ansible.builtin.yaml \
	ANSIBLE_COLLECTIONS_PATH="$(CURDIR)/collections:$$(python3 -c 'import ansible_collections, os; print(os.pathsep.join(os.path.dirname(p) for p in ansible_collections.__path__))')" \
	  $(LEGACY_VENV)/bin/ansible-playbook --syntax-check -e configure_roles_hosts=all \
	  tests/lint/legacy_roles.yml playbooks/configure_roles.yml playbooks/generalise.yml >/dev/null
	ruff check --no-cache .
	python3 scripts/check-target-python.py
	# The plugins' documentation against their argument specs, imports, pep8, ... (ansible-test; scripts/sanity.sh says which).
	scripts/sanity.sh
	python3 scripts/lint-iam-policies.py
	ansible-galaxy collection build --force --output-path output/build >/dev/null
	echo "lint: yamllint, ansible-lint (production), the legacy runner's syntax check, ruff, machine-side Python (3.5), ansible-test sanity on the plugins, the IAM policies (parliament) and the collection build are clean"

unit: setup
	pytest -q tests/unit $(PYTEST_ARGS)

# The provider tests spend their time in ansible-playbook runs, each busy on one core.
# PROVIDER_WORKERS=2 runs two files at a time (pytest-xdist, --dist loadfile: a file's tests stay
# on one worker, as several share a module fixture and run in order); the default is one.
PROVIDER_WORKERS ?= 1
PROVIDER_TESTS ?= tests/provider
# The AWS image bake's provider tests run on the container side of make test, after e2e, so that
# both sides take about as long.
PROVIDER_TESTS_ON_CONTAINERS := tests/provider/test_image_aws.py
provider: setup
	pytest -q --durations=30 $(if $(filter-out 1,$(PROVIDER_WORKERS)),-n $(PROVIDER_WORKERS) --dist loadfile) $(PROVIDER_TESTS) $(PYTEST_ARGS)

# The demo end to end: make demo, again (no change), a broken seat, make demo-down.
e2e: setup
	pytest -q -s --durations=10 tests/e2e $(PYTEST_ARGS)

molecule: setup
	failed=""
	for s in $(SCENARIOS); do
	  echo "=== molecule scenario $$s"
	  t0=$$(date +%s)
	  molecule test -s $$s || failed="$$failed $$s"
	  echo "=== molecule scenario $$s: $$(( $$(date +%s) - t0 )) s"
	done
	if [ -n "$$failed" ]; then echo "molecule: failed:$$failed"; exit 1; fi
	echo "molecule: $(words $(SCENARIOS)) scenarios passed"

bench: setup
	python tests/bench/run.py

build: setup
	ansible-galaxy collection build --force --output-path output/build

## The demo course on this machine: two seats in containers, configured and verified.
# DEMO_COURSE/DEMO_EXTRA let the end-to-end test run the same steps on its own copy.
DEMO_COURSE ?= demo
DEMO_EXTRA ?=
DEMO_MIRROR := $(CACHE_DIR)/demo-mirror
DEMO_ARGS := -e course=$(DEMO_COURSE) -e artifact_mirror=$(DEMO_MIRROR) $(DEMO_EXTRA)

DEMO_PROFILE ?= scipion-3
DEMO_IMAGE := localhost/scipion-cloud/$(DEMO_COURSE)-$(DEMO_PROFILE):latest

demo: setup
	@start=$$(date +%s)
	python3 scripts/demo_dataset.py --out $(DEMO_MIRROR) >/dev/null
	image_args=""
	if podman image exists $(DEMO_IMAGE); then
	  echo "New seats start from $(DEMO_IMAGE), captured by an earlier make demo (podman rmi it to start from scratch)."
	  image_args="-e course_local_base_image=$(DEMO_IMAGE)"
	fi
	ansible-playbook playbooks/provision.yml $(DEMO_ARGS) $$image_args
	ansible-playbook playbooks/configure.yml $(DEMO_ARGS)
	ansible-playbook playbooks/verify.yml $(DEMO_ARGS)
	if ! podman image exists $(DEMO_IMAGE); then
	  echo "Capturing seat 1 as $(DEMO_IMAGE), so that the next demo's seats start configured."
	  ansible-playbook playbooks/image.yml -e provider=local -e profile=$(DEMO_PROFILE) -e image_name_prefix=$(DEMO_COURSE) \
	    -e image_local_seat=$(DEMO_COURSE)-training-01 -e image_keep=1
	fi
	echo
	echo "The demo course is ready ($$(( $$(date +%s) - start )) s). Open a seat in your browser and accept"
	echo "its self-signed certificate:"
	python3 -c 'import csv,sys; [print("  seat", r["seat"], r["url"]) for r in csv.DictReader(open(sys.argv[1]))]' output/$(DEMO_COURSE)/access.csv
	echo "Each seat's password is on the access sheet, output/$(DEMO_COURSE)/access.html (readable by you only)."
	echo "Checks: output/$(DEMO_COURSE)/verify.html (screenshots in output/$(DEMO_COURSE)/verify/)"
	echo "Stop with: ansible-playbook playbooks/lifecycle.yml -e course=$(DEMO_COURSE) -e course_action=stop   Remove with: make demo-down"

demo-down: setup
	ansible-playbook playbooks/teardown.yml -e course=$(DEMO_COURSE) -e confirm_teardown=$(DEMO_COURSE) $(DEMO_EXTRA)

clean:
	rm -rf output/build .pytest_cache
