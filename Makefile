# make run: set up and serve the helpdesk with demo data. make test: set up and run the tests.
VENV := .venv
BIN := $(VENV)/bin
HTMX_VERSION := 2.0.11
HTMX_SSE_VERSION := 2.2.4
VENDOR := app/static/vendor

.PHONY: run setup test bench lint clean

run: setup
	$(BIN)/helpdesk demo --if-empty
	$(BIN)/helpdesk serve

setup: $(BIN)/.installed $(VENDOR)/htmx.min.js

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# htmx is fetched from npm at a pinned version and kept out of git; nothing loads from a CDN.
$(VENDOR)/htmx.min.js: Makefile
	rm -rf $(VENDOR) .npm-pack && mkdir -p $(VENDOR) .npm-pack
	cd .npm-pack && npm pack --silent htmx.org@$(HTMX_VERSION) htmx-ext-sse@$(HTMX_SSE_VERSION) >/dev/null
	tar -xzf .npm-pack/htmx.org-$(HTMX_VERSION).tgz -C .npm-pack package/dist/htmx.min.js
	mv .npm-pack/package/dist/htmx.min.js $(VENDOR)/htmx.min.js
	tar -xzf .npm-pack/htmx-ext-sse-$(HTMX_SSE_VERSION).tgz -C .npm-pack package/dist/sse.js
	mv .npm-pack/package/dist/sse.js $(VENDOR)/sse.js
	rm -rf .npm-pack

test: setup
	bash tests/install-system-packages.sh /usr/bin/chromium=chromium /usr/sbin/dovecot=dovecot-imapd
	$(BIN)/python -m pytest

bench: setup
	bash tests/install-system-packages.sh wrk=wrk /usr/sbin/dovecot=dovecot-imapd
	$(BIN)/python -m bench.run

lint: setup
	$(BIN)/python -m compileall -q app workers tests bench

clean:
	rm -rf $(VENV) $(VENDOR)
