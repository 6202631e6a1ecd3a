# kill -9 of the worker mid-batch: the server restarts, the new worker
# gives the jobs in flight back at once (attempt counted) and every job
# ends succeeded exactly once; nothing waits for a lease to expire.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SynchubTest;
use Test::More;

my $mock = start_mock();
my $url = $mock->{url};
my $node = synchub_node('crash', "synchub.max_concurrent_requests = 20\nrestart_after_crash = on\n");
ok(wait_for_worker($node, 'postgres'), 'worker running');
my $pid = worker_pid($node, 'postgres');

enqueue_http($node, 'postgres', "$url/delay/300", n => 200);
$node->poll_query_until('postgres',
	"SELECT count(*) = 20 FROM synchub.job_queue WHERE state = 'running'");
my $done_before = $node->safe_psql('postgres', "SELECT count(*) FROM synchub.job_history");
kill 'KILL', $pid;

# the postmaster restarts every process; the launcher brings the worker back
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'synchub worker' AND pid <> $pid"),
	'a new worker runs after kill -9');
{
	local $PostgreSQL::Test::Utils::timeout_default = 90;
	ok(wait_finished($node, 'postgres'), 'every job finishes well before the 5 minute lease');
}
is($node->safe_psql('postgres',
	"SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE state = 'succeeded') FROM synchub.jobs"),
	'200|200|200', 'every job succeeded, each once');
my $retried = $node->safe_psql('postgres', "SELECT count(*) FROM synchub.jobs WHERE attempts = 2");
cmp_ok($retried, '>=', 1, "jobs in flight at the kill ran again ($retried), attempt counted");
cmp_ok($retried, '<=', 20, 'only the jobs in flight ran again');
is($node->safe_psql('postgres', "SELECT count(*) FROM synchub.jobs WHERE attempts > 2"),
	'0', 'no job ran more than twice');
like($node->safe_psql('postgres',
	"SELECT last_error FROM synchub.jobs WHERE attempts = 2 LIMIT 1"),
	qr/^lease expired \(worker synchub:\d+:$pid\)$/, 'the recovered jobs name the dead worker');
note("jobs done before the kill: $done_before");

$node->stop;
stop_mock($mock);
done_testing();
