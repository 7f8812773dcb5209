# inndx sessions. Everything goes through scripts/setup first (quick when done).
#   make setup   install system packages, .venv, geckodriver, the Selenium Grid jar
#   make run     the service under gunicorn (INNDX_HOST, PORT: default 127.0.0.1:8022)
#   make test    the tox matrix (tox.ini: unit, chrome, firefox, grid); setup adds redis-server, nginx
#   make bench   every bench/*.py; setup adds nginx (bench/load.py)
#   make grid    a local Selenium Grid standalone on 127.0.0.1:4444 (GRID_ARGS="--port N ...")
#   make clean   remove .venv, .tools, .tox

SHELL := /bin/bash
VENV := .venv
GRID_ARGS ?=

# If anything ever reaches Selenium Manager, it must not try to download.
export SE_OFFLINE := true

.DEFAULT_GOAL := test
.PHONY: setup run test bench grid clean

setup:
	@scripts/setup

run: setup
	exec $(VENV)/bin/gunicorn -c gunicorn.conf.py 'service.app:create_app()'

test:
	@scripts/setup --with-redis --with-nginx
	$(VENV)/bin/tox

bench:
	@scripts/setup --with-nginx
	@set -e; for f in bench/*.py; do \
		[ -e "$$f" ] || continue; \
		echo "== $$f"; \
		$(VENV)/bin/python "$$f"; \
	done

grid: setup
	exec scripts/grid standalone $(GRID_ARGS)

clean:
	rm -rf $(VENV) .tools .tox
