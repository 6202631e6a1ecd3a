# SynchubTest.pm — shared by the TAP tests of the worker: a node that
# preloads synchub and allows 127.0.0.1, and the repository's HTTP mock
# (test/mock/httpmock.py) on a free port.
package SynchubTest;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use IPC::Run;

our @EXPORT = qw(synchub_node start_mock stop_mock mock_get mock_post
  wait_for_worker worker_pid enqueue_http wait_finished start_crm_mocks crm_request);

# A started node with synchub preloaded and created in database postgres.
sub synchub_node
{
	my ($name, $extra) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', <<"CONF" . ($extra // ''));
shared_preload_libraries = 'synchub'
max_worker_processes = 16
synchub.allowed_hosts = '127.0.0.1'
synchub.poll_interval = 200
synchub.retry_base_delay = 0
log_min_messages = info
CONF
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION synchub');
	return $node;
}

# Mock servers started here; whatever is left of them when the test ends
# (even by dying) is stopped, so none outlives its test.
my @started;

END
{
	local $?;
	for my $h (@started)
	{
		if (ref $h) { eval { $h->kill_kill(grace => 2) }; }
		else { kill 'TERM', $h; waitpid($h, 0); }
	}
}

# Start the mock; returns { pid, port, url, dir }.
sub start_mock
{
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $script = dirname(__FILE__) . '/../mock/httpmock.py';
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>', "$dir/stdout");
		open(STDERR, '>', "$dir/stderr");
		exec('python3', $script, '--port', '0', '--port-file', "$dir/port")
		  or die "exec: $!";
	}
	push @started, $pid;
	for (1 .. 300)
	{
		last if -s "$dir/port";
		usleep(100_000);
	}
	die "mock did not start" unless -s "$dir/port";
	my $port = PostgreSQL::Test::Utils::slurp_file("$dir/port");
	$port =~ s/\s+//g;
	return { pid => $pid, port => $port, url => "http://127.0.0.1:$port", dir => $dir };
}

sub stop_mock
{
	my ($mock) = @_;
	kill 'TERM', $mock->{pid};
	waitpid($mock->{pid}, 0);
	@started = grep { !(!ref $_ && $_ == $mock->{pid}) } @started;
}

sub mock_get
{
	my ($mock, $path) = @_;
	my $r = HTTP::Tiny->new->get($mock->{url} . $path);
	die "mock GET $path: $r->{status}" unless $r->{success};
	return decode_json($r->{content});
}

sub mock_post
{
	my ($mock, $path, $body) = @_;
	my $r = HTTP::Tiny->new->post($mock->{url} . $path,
		{ content => $body // '{}', headers => { 'content-type' => 'application/json' } });
	die "mock POST $path: $r->{status}" unless $r->{success};
	return decode_json($r->{content});
}

# Wait until database $db has a running synchub worker (or none).
sub wait_for_worker
{
	my ($node, $db, $want) = @_;
	$want //= 1;
	return $node->poll_query_until('postgres',
		"SELECT count(*) = $want FROM pg_stat_activity"
		  . " WHERE backend_type = 'synchub worker' AND datname = '$db'");
}

sub worker_pid
{
	my ($node, $db) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'synchub worker' AND datname = '$db'");
}

# Enqueue $n http jobs for $url (a path of the mock, or a full URL);
# extra: SQL jsonb to merge into the payload.
sub enqueue_http
{
	my ($node, $db, $url, %o) = @_;
	my $n = $o{n} // 1;
	my $extra = $o{payload} // '{}';
	my $max = $o{max_attempts} // 5;
	return $node->safe_psql($db,
		"SELECT string_agg(synchub.enqueue('http', jsonb_build_object('url', '$url') || '$extra'::jsonb,"
		  . " queue => 'synchub', max_attempts => $max)::text, ',') FROM generate_series(1, $n)");
}

# Wait until every job of queue synchub is finished.
sub wait_finished
{
	my ($node, $db, $timeout) = @_;
	local $PostgreSQL::Test::Utils::timeout_default = $timeout if $timeout;
	return $node->poll_query_until($db,
		"SELECT count(*) = 0 FROM synchub.job_queue WHERE queue = 'synchub'");
}

# One mock CRM server (test/mock/crm.py) per provider, each seeded with
# $contacts contacts for token "test-token"; returns ({provider => port},
# [IPC::Run handles]) once every server listens.
sub start_crm_mocks
{
	my ($dir, $contacts, $seed, @providers) = @_;
	my (%port, @servers);
	for my $p (@providers)
	{
		push @servers, IPC::Run::start(
			[ 'python3', 'test/mock/crm.py', '--provider', $p, '--contacts', $contacts, '--seed', $seed,
			  '--port', '0', '--port-file', "$dir/$p.port" ],
			'>', "$dir/$p.out", '2>&1');
		push @started, $servers[-1];
	}
	for my $p (@providers)
	{
		for (1 .. 300)
		{
			last if -s "$dir/$p.port";
			usleep(50_000);
		}
		($port{$p}) = slurp_file("$dir/$p.port") =~ /(\d+)/;
		ok($port{$p}, "$p mock listens");
	}
	return (\%port, \@servers);
}

# A JSON request to a mock CRM on $port; returns the decoded answer.
sub crm_request
{
	my ($port, $method, $path, $body) = @_;
	my $r = HTTP::Tiny->new(timeout => 30)->request($method, "http://127.0.0.1:$port$path",
		defined $body
		? { content => JSON::PP->new->canonical->encode($body),
			headers => { 'content-type' => 'application/json' } }
		: {});
	die "mock $method $path: $r->{status}" unless $r->{success};
	return decode_json($r->{content});
}

1;
