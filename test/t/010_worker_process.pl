# The worker's process model: launcher, start and stop, SIGHUP, CREATE and
# DROP EXTENSION, DROP DATABASE while jobs run, postmaster restart, and
# start_worker() without shared_preload_libraries.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SynchubTest;
use Test::More;
use Time::HiRes qw(time usleep);

my $mock = start_mock();
my $url = $mock->{url};
my $node = synchub_node('process');

ok(wait_for_worker($node, 'postgres'), 'the launcher starts a worker for the database');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'synchub launcher'"),
	'1', 'one launcher');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'synchub worker'"),
	'1', 'no worker for template databases');

my $id = enqueue_http($node, 'postgres', "$url/ok");
ok(wait_finished($node, 'postgres'), 'a job runs');
is($node->safe_psql('postgres', "SELECT state, result->'body' FROM synchub.jobs WHERE id = $id"),
	'succeeded|{"ok": true}', 'the job succeeded with the response');

# stop and start
is($node->safe_psql('postgres', 'SELECT synchub.stop_worker()'), 't', 'stop_worker() stops the worker');
ok(wait_for_worker($node, 'postgres', 0), 'no worker after stop_worker()');
$id = enqueue_http($node, 'postgres', "$url/ok");
usleep(1_000_000);
is($node->safe_psql('postgres', "SELECT state FROM synchub.jobs WHERE id = $id"),
	'pending', 'the launcher does not restart a stopped worker');
is($node->safe_psql('postgres', 'SELECT synchub.stop_worker()'), 'f', 'stop_worker() without a worker');
is($node->safe_psql('postgres', 'SELECT synchub.start_worker()'), 't', 'start_worker() starts it again');
is($node->safe_psql('postgres', 'SELECT synchub.start_worker()'), 'f', 'start_worker() when it runs');
ok(wait_finished($node, 'postgres'), 'the pending job runs after start_worker()');

# SIGHUP: a reloaded setting takes effect
$node->safe_psql('postgres', "ALTER SYSTEM SET synchub.user_agent = 'reloaded-agent/2'");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
my $agent = '';
for (1 .. 50)
{
	$id = enqueue_http($node, 'postgres', "$url/echo");
	wait_finished($node, 'postgres');
	$agent = $node->safe_psql('postgres',
		"SELECT result->'body'->'headers'->>'user-agent' FROM synchub.jobs WHERE id = $id");
	last if $agent eq 'reloaded-agent/2';
	usleep(100_000);
}
is($agent, 'reloaded-agent/2', 'synchub.user_agent changed by SIGHUP is used');

# CREATE EXTENSION in a new database gets a worker at once
$node->safe_psql('postgres', 'CREATE DATABASE db2');
$node->safe_psql('db2', 'CREATE EXTENSION synchub');
ok(wait_for_worker($node, 'db2'), 'CREATE EXTENSION starts a worker');

# A role that does not own db2 cannot stop its worker by trying to drop,
# rename or copy it: the statements fail and the worker keeps running.
$node->safe_psql('postgres', 'CREATE ROLE regress_intruder LOGIN CREATEDB');
my $pid_before = worker_pid($node, 'db2');
for my $stmt ('DROP DATABASE db2', 'ALTER DATABASE db2 RENAME TO db2x',
	'CREATE DATABASE dbcopy TEMPLATE db2')
{
	my ($rc, $out, $err) = $node->psql('postgres', $stmt, extra_params => [ '-U', 'regress_intruder' ]);
	isnt($rc, 0, "$stmt by a non-owner fails");
}
like(
	($node->psql('postgres', 'BEGIN; DROP DATABASE db2; COMMIT;'))[2] // '',
	qr/cannot run inside a transaction block/,
	'DROP DATABASE in a transaction block fails');
is(worker_pid($node, 'db2'), $pid_before, 'the worker of db2 kept running through all of them');
$node->safe_psql('postgres', 'DROP ROLE regress_intruder');

# DROP DATABASE while jobs run returns promptly
enqueue_http($node, 'db2', "$url/delay/5000", n => 10);
$node->poll_query_until('db2', "SELECT count(*) = 10 FROM synchub.job_queue WHERE state = 'running'");
my $t0 = time;
$node->safe_psql('postgres', 'DROP DATABASE db2');
my $took = time - $t0;
cmp_ok($took, '<', 3, "DROP DATABASE with a busy worker returns promptly (${took}s)");

# DROP EXTENSION while jobs run returns promptly; the worker leaves
$node->safe_psql('postgres', 'CREATE DATABASE db3');
$node->safe_psql('db3', 'CREATE EXTENSION synchub');
ok(wait_for_worker($node, 'db3'), 'worker for db3');
enqueue_http($node, 'db3', "$url/delay/3000", n => 10);
$node->poll_query_until('db3', "SELECT count(*) = 10 FROM synchub.job_queue WHERE state = 'running'");
$t0 = time;
$node->safe_psql('db3', 'DROP EXTENSION synchub');
$took = time - $t0;
cmp_ok($took, '<', 2, "DROP EXTENSION with a busy worker returns promptly (${took}s)");
ok(wait_for_worker($node, 'db3', 0), 'the worker leaves a database without the extension');
$node->safe_psql('db3', 'CREATE EXTENSION synchub');
ok(wait_for_worker($node, 'db3'), 'CREATE EXTENSION again brings the worker back');

# postmaster restart
$node->restart;
ok(wait_for_worker($node, 'postgres'), 'worker back after a restart');
ok(wait_for_worker($node, 'db3'), 'every database gets its worker after a restart');
$id = enqueue_http($node, 'postgres', "$url/ok");
ok(wait_finished($node, 'postgres'), 'jobs run after a restart');

# without shared_preload_libraries
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('synchub launcher', 'synchub worker')"),
	'0', 'no launcher and no worker without preload');
$node->append_conf('postgresql.conf', "synchub.rollup_interval = '1s'");
$node->reload;
$id = enqueue_http($node, 'postgres', "$url/ok");
is($node->safe_psql('postgres', 'SELECT synchub.start_worker()'), 't', 'start_worker() without preload');
ok(wait_finished($node, 'postgres'), 'the started worker runs jobs');
is($node->safe_psql('postgres', "SELECT state FROM synchub.jobs WHERE id = $id"), 'succeeded', 'job succeeded');
# the worker refreshes the rollups every synchub.rollup_interval
$node->safe_psql('postgres',
	"INSERT INTO synchub.events (campaign_id, lead_id, kind) SELECT 77, g, 'sent' FROM generate_series(1, 5) g");
ok($node->poll_query_until('postgres',
	"SELECT coalesce(sum(sent), 0) = 5 FROM synchub.campaign_rollups WHERE campaign_id = 77"),
	'the worker refreshed the rollups by itself');
is($node->safe_psql('postgres', 'SELECT synchub.stop_worker()'), 't', 'stop_worker() without preload');
ok(wait_for_worker($node, 'postgres', 0), 'the worker is gone');

$node->stop;
stop_mock($mock);
done_testing();
