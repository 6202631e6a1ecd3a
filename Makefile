# synchub — PGXS build
#
# The install script sql/synchub--$(EXTVERSION).sql is assembled from the
# fragments in sql/install/, one per module, in file-name order.  Regression
# inputs are every other sql/*.sql file; isolation specs live in test/specs,
# TAP tests in test/t.

EXTENSION  = synchub
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" synchub.control)

MODULE_big = synchub
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

INSTALL_FRAGMENTS = $(sort $(wildcard sql/install/*.sql))
DATA_built = sql/synchub--$(EXTVERSION).sql
DATA       = $(filter-out $(DATA_built),$(wildcard sql/synchub--*--*.sql))

CURL_CONFIG ?= curl-config
PG_CPPFLAGS = -I$(CURDIR)/src $(shell $(CURL_CONFIG) --cflags)
SHLIB_LINK  = $(shell $(CURL_CONFIG) --libs) -lcrypto

# Every suite runs against a throwaway server that preloads synchub.
SYNCHUB_CONF = $(CURDIR)/test/synchub.conf
REGRESS    = $(sort $(filter-out synchub--%,$(notdir $(basename $(wildcard sql/*.sql)))))
REGRESS_OPTS = --temp-instance=tmp_check_regress --temp-config=$(SYNCHUB_CONF) --load-extension=synchub
ISOLATION  = $(sort $(notdir $(basename $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --temp-instance=tmp_check_iso --temp-config=$(SYNCHUB_CONF) --inputdir=test --load-extension=synchub
TAP_TESTS  = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))

EXTRA_CLEAN = sql/synchub--$(EXTVERSION).sql results output_iso tmp_check tmp_check_regress tmp_check_iso log regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/synchub--$(EXTVERSION).sql: $(INSTALL_FRAGMENTS) synchub.control
	cat $(INSTALL_FRAGMENTS) > $@

$(OBJS): $(wildcard src/*.h)

# PGXS has no "make check": installcheck with --temp-instance is the check.
.PHONY: check-all
check-all: installcheck
