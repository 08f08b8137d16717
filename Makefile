# Cunguan: `make run` sets everything up and serves; `make test` sets up and runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
APT_PACKAGES := python3-venv libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk poppler-utils openssl graphviz chromium
# the platform's key folder (no bank private key in it) and the bank simulator's own (the banks' private keys)
KEYS_DIR ?= $(or $(CUNGUAN_KEYS_DIR),$(or $(CUNGUAN_INSTANCE_PATH),instance)/keys)
BANK_SIM_KEYS_DIR ?= $(or $(CUNGUAN_INSTANCE_PATH),instance)/bank-sim-keys
TSA_KEYS_DIR ?= $(or $(CUNGUAN_TSA_KEYS_DIR),$(or $(CUNGUAN_INSTANCE_PATH),instance)/tsa)
WEB_PORT ?= 5000
SIM_PORT ?= 5001
# `make test`: pytest-xdist worker processes (every test is isolated: its own database or schema, its own ports)
TEST_WORKERS ?= 2

.PHONY: run test setup system-deps lint bench

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "安装系统依赖 / installing system packages: $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: requirements.txt
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

setup: system-deps $(VENV)/.installed
	@$(FLASK) keys init
	@$(FLASK) bank-sim keys --keys-dir $(BANK_SIM_KEYS_DIR) --platform-key $(KEYS_DIR)/platform.pub.pem
	@$(FLASK) bank-sim certify --keys-dir $(BANK_SIM_KEYS_DIR) --platform-key $(KEYS_DIR)/platform.pub.pem
	@$(FLASK) tsa certify --keys-dir $(TSA_KEYS_DIR) --ca-keys-dir $(KEYS_DIR)
	@$(FLASK) db upgrade
	@$(FLASK) city import-files
	@$(FLASK) definition import-files
	@$(FLASK) user create-demo

run: setup
	@$(FLASK) serve-all --port $(WEB_PORT) --sim-port $(SIM_PORT)

lint: $(VENV)/.installed
	$(BIN)/ruff check app tests bench migrations
	$(BIN)/ruff format --check app tests bench migrations

test: system-deps $(VENV)/.installed
	$(BIN)/ruff check app tests migrations
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(BIN)/python bench/crypto_and_pdf.py
