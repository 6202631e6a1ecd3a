# The allow-list is checked against the resolved address (a listed name
# that resolves to loopback is refused: DNS rebinding cannot reach
# internal services), and a planted secret never reaches the server log,
# last_error or pg_stat_activity.
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
my $port = $mock->{port};
my $node = synchub_node('security');
ok(wait_for_worker($node, 'postgres'), 'worker running');

sub set_allowed
{
	my ($value) = @_;
	$node->safe_psql('postgres', 'SELECT synchub.stop_worker()');
	$node->safe_psql('postgres', "ALTER SYSTEM SET synchub.allowed_hosts = '$value'");
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	$node->poll_query_until('postgres', "SELECT current_setting('synchub.allowed_hosts') = '$value'");
	$node->safe_psql('postgres', 'SELECT synchub.start_worker()');
}

# a host name on the list that resolves to a loopback address
set_allowed('localhost');
mock_post($mock, '/_mock/reset');
my $conns = mock_get($mock, '/_mock/stats')->{connections};
my $id = enqueue_http($node, 'postgres', "http://localhost:$port/ok");
ok(wait_finished($node, 'postgres'), 'job to a name resolving to loopback finishes');
is($node->safe_psql('postgres', "SELECT state, attempts, last_error FROM synchub.jobs WHERE id = $id"),
	"dead|1|GET http://localhost:$port/ok: address not allowed by synchub.allowed_hosts",
	'a listed name resolving to loopback is refused and goes dead');

# a host that is not on the list at all
set_allowed('api.example.com, .example.org');
$id = enqueue_http($node, 'postgres', "$url/ok");
ok(wait_finished($node, 'postgres'), 'job to an unlisted host finishes');
is($node->safe_psql('postgres', "SELECT state, last_error FROM synchub.jobs WHERE id = $id"),
	"dead|GET $url/ok: address not allowed by synchub.allowed_hosts",
	'a host not on the allow-list goes dead');
my $stats = mock_get($mock, '/_mock/stats');
is(($stats->{connections} - $conns) . '/' . $stats->{requests}, '1/0',
	'the mock saw no connection but the one reading its stats');

# planted secrets: in a header, in the query string and as user info
set_allowed('127.0.0.1');
my $secret = 'PLANTED-7f3a9c';
my $with_secret = sub {
	my ($path, $extra) = @_;
	my $u = "http://user:$secret-pw\@127.0.0.1:$port$path";
	return $node->safe_psql('postgres',
		"SET log_statement = 'none'; SELECT synchub.enqueue('http', jsonb_build_object('url', '$u',"
		  . " 'headers', jsonb_build_object('Authorization', 'Bearer $secret-hdr')) || '$extra'::jsonb,"
		  . " queue => 'synchub', max_attempts => 1)");
};
my @ids = ($with_secret->("/status/500?token=$secret-q", '{}'),
	$with_secret->("/status/401?token=$secret-q&body=denied", '{}'),
	$with_secret->("/delay/5000?token=$secret-q", '{"timeout_ms": 1500}'));
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM synchub.job_queue WHERE state = 'running'");
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%' || 'PLAN' || 'TED' || '%' AND pid <> pg_backend_pid()"),
	'0', 'no secret in pg_stat_activity');
ok($node->poll_query_until('postgres',
	"SELECT query ~ '^synchub worker: running 1 jobs, latest job $ids[2] \\(http\\)\$'"
	  . " FROM pg_stat_activity WHERE backend_type = 'synchub worker'"),
	'pg_stat_activity shows the job id and kind');
ok(wait_finished($node, 'postgres'), 'secret-bearing jobs finish');
is($node->safe_psql('postgres',
	"SELECT string_agg(last_error, E'\\n' ORDER BY id) FROM synchub.jobs WHERE id IN (" . join(',', @ids) . ")"),
	"GET http://127.0.0.1:$port/status/500?[redacted]: HTTP 500\n"
	  . "GET http://127.0.0.1:$port/status/401?[redacted]: HTTP 401: denied\n"
	  . "GET http://127.0.0.1:$port/delay/5000?[redacted]: timed out after 1500 ms",
	'errors carry the status but no user info, query string or header');
my $reqs = mock_get($mock, '/_mock/requests?path=/status/500');
is($reqs->[0]{headers}{authorization}, "Bearer $secret-hdr", 'the header was sent');

$node->stop;
my $log = slurp_file($node->logfile);
unlike($log, qr/PLANTED/, 'no planted secret in the server log');

stop_mock($mock);
done_testing();
