# Sync jobs and errors, run by the worker against the mock CRM servers: an
# expired token is refreshed once, a Salesforce quota error pauses the
# integration without using an attempt (and the job resumes from its
# checkpoint, restarting an expired query locator), a 5xx retries from the checkpoint, a 400 ends the job dead,
# two jobs of one integration share its rate budget, and a schedule runs by
# itself.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use File::Temp qw(tempdir);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SynchubTest;
use Test::More;

my $N = 60;
$PostgreSQL::Test::Utils::timeout_default = 30;
my $dir = tempdir(CLEANUP => 1);
my @providers = qw(hubspot salesforce pipedrive);

my ($ports, $servers) = start_crm_mocks($dir, $N, 4, @providers);
my %port = %$ports;
my @servers = @$servers;

my $node = synchub_node('sync_errors', "log_statement = none\n");
sub sql { return $node->safe_psql('postgres', $_[0]); }

sub mock { my $p = shift; return crm_request($port{$p}, @_); }

sub wait_job
{
	my ($id, $timeout) = @_;
	local $PostgreSQL::Test::Utils::timeout_default = $timeout // 60;
	$node->poll_query_until('postgres', "SELECT state IN ('succeeded', 'dead') FROM synchub.jobs WHERE id = $id");
	note(sql("SELECT concat_ws(' ', 'job', id, state, last_error) FROM synchub.jobs WHERE id = $id"));
	return sql("SELECT concat_ws('|', state, attempts, records_processed) FROM synchub.jobs WHERE id = $id");
}

sub integration
{
	my ($name, $p, $creds, $options) = @_;
	return sql("SELECT synchub.create_integration('$name', '$p', 'http://127.0.0.1:$port{$p}',
		'$creds', '$options')");
}

sub stored
{
	my $iid = shift;
	return sql("SELECT count(*) FROM synchub.contacts WHERE integration_id = $iid");
}

# An expired access token: one refresh, then the page again.
my $hs = integration('hs', 'hubspot', '{"token": "test-token", "refresh_token": "test-refresh"}', '{"page_size": 20}');
mock('hubspot', 'POST', '/_mock/expire', { token => 'test-token' });
my $job = sql("SELECT synchub.sync('hs', 'full')");
is(wait_job($job), "succeeded|1|$N", 'hubspot: the import succeeds after a token refresh');
is(stored($hs), $N, 'every contact stored');
like(sql("SELECT synchub._credentials_get($hs)->>'access_token'"), qr/^(?!test-token$)\S+$/, 'the new access token is stored');
is(scalar(grep { $_->{path} eq '/oauth/v1/token' } @{ mock('hubspot', 'GET', '/_mock/requests') }), 1,
	'one refresh request');
# With no refresh token, an expired token ends the job.
my $hs2 = integration('hs2', 'hubspot', '{"token": "dead-token"}', '{}');
$job = sql("SELECT synchub.sync('hs2', 'full')");
is(wait_job($job), 'dead|1|0', 'hubspot: an unknown token without refresh token is dead at once');
like(sql("SELECT last_error FROM synchub.jobs WHERE id = $job"),
	qr{^GET http://127\.0\.0\.1:\d+/crm/v3/objects/contacts\S*: auth error: HTTP 401}, 'last_error names the request and the status');
is(sql("SELECT last_sync_status FROM synchub.sync_state WHERE integration_id = $hs2"), 'failed', 'sync_state says failed');

# Salesforce quota: the integration is paused, the job waits without an attempt.
my $SF = 5000;
mock('salesforce', 'POST', '/_mock/accounts', { token => 'quota-token', contacts => $SF, seed => 4, daily_quota => 2 });
my $sf = integration('sf', 'salesforce', '{"token": "quota-token"}', '{"page_size": 2000}');
$job = sql("SELECT synchub.sync('sf', 'full')");
ok($node->poll_query_until('postgres', "SELECT status = 'paused' FROM synchub.integrations WHERE id = $sf"),
	'salesforce: the quota error pauses the integration');
ok($node->poll_query_until('postgres', "SELECT state = 'pending' FROM synchub.jobs WHERE id = $job"),
	'the job is pending again');
is(sql("SELECT attempts || '|' || records_processed || '|' || (run_at > now() + interval '50 minutes') FROM synchub.jobs WHERE id = $job"),
	'0|4000|true', 'no attempt used, two pages kept, held for the pause');
like(sql("SELECT status_reason FROM synchub.integrations WHERE id = $sf"), qr/quota error: HTTP 403 REQUEST_LIMIT_EXCEEDED/,
	'the pause reason is the provider error');
mock('salesforce', 'POST', '/_mock/reset');
sql("SELECT synchub._integration_resume($sf)");
is(wait_job($job), "succeeded|1|$SF", 'after the pause the import finishes in its first attempt');
# The reset also dropped the query locator: the stored cursor fails once
# (restart) and a new query starts after the last stored record.
my @sf_reqs = grep { $_->{path} =~ m{/query} && defined $_->{status} } @{ mock('salesforce', 'GET', '/_mock/requests') };
is(join(',', map { $_->{status} } @sf_reqs), '400,200',
	'it resumed from the checkpoint: the expired locator restarts the query, which fetches the last page only');
is(stored($sf), $SF, 'every contact stored once');

# A 5xx: retry with backoff from the checkpoint; a 400: dead.
my $pd = integration('pd', 'pipedrive', '{"token": "test-token"}', '{"page_size": 10}');
mock('pipedrive', 'POST', '/_mock/faults', { match => '/api/v2/persons', status => 500, count => 1, after => 2 });
$job = sql("SELECT synchub.sync('pd', 'full')");
is(wait_job($job), "succeeded|2|$N", 'pipedrive: a 5xx costs an attempt and the import succeeds');
my @pd_reqs = grep { $_->{path} eq '/api/v2/persons' } @{ mock('pipedrive', 'GET', '/_mock/requests') };
my %cursors = map { ($_->{query}{cursor} // '') => 1 } @pd_reqs;
is(scalar(@pd_reqs), scalar(keys %cursors) + 1, 'only the failed page was fetched twice');
mock('pipedrive', 'POST', '/_mock/reset');
mock('pipedrive', 'POST', '/_mock/faults', { match => '/api/v2/persons', status => 400, count => 1,
	body => { success => JSON::PP::false, error => 'bad filter' } });
$job = sql("SELECT synchub.sync('pd', 'full')");
is(wait_job($job), 'dead|1|0', 'pipedrive: a 400 is fatal');
like(sql("SELECT last_error FROM synchub.jobs WHERE id = $job"), qr/fatal error: HTTP 400/, 'with the status');

# Two jobs of one integration share its budget (2 requests per second).
mock('pipedrive', 'POST', '/_mock/reset');
sql("UPDATE synchub.integrations SET options = options || '{\"rate_limit\": {\"requests\": 2, \"per_seconds\": 1}, \"page_size\": 10}' WHERE id = $pd");
sql("DELETE FROM synchub.sync_state WHERE integration_id = $pd");
sleep 2;	# the worker reads the budgets every second
my ($j1, $j2) = split /\|/, sql("SELECT synchub.sync('pd', 'full'), synchub.sync('pd', 'incremental')");
is(wait_job($j1) . ',' . wait_job($j2), "succeeded|1|$N,succeeded|1|$N", 'both jobs succeed without using attempts');
my $stats = mock('pipedrive', 'GET', '/_mock/stats?windows=1');
cmp_ok($stats->{max_in_window}{1}, '<=', 2, 'never more than 2 requests in a second');
cmp_ok($stats->{requests}, '>=', 12, 'over at least 12 requests');

# A schedule runs by itself.
sql("SELECT synchub.schedule('pd', '1 hour', 'full')");
ok($node->poll_query_until('postgres', "SELECT last_job_id IS NOT NULL FROM synchub.schedules WHERE integration_id = $pd"),
	'the worker enqueues the due schedule');
is(wait_job(sql("SELECT last_job_id FROM synchub.schedules WHERE integration_id = $pd")), "succeeded|1|$N",
	'and runs its job');
cmp_ok(sql("SELECT next_run_at > now() + interval '50 minutes' FROM synchub.schedules WHERE integration_id = $pd"), 'eq', 't',
	'the next run is an interval later');

# HubSpot's search has its own window (5 per second) on top of the
# account's: an incremental run of many small search pages waits for it
# instead of meeting 429 answers.
mock('hubspot', 'POST', '/_mock/accounts', { token => 'search-token', contacts => $N, seed => 9 });
my $hs5 = integration('hs5', 'hubspot', '{"token": "search-token"}', '{"page_size": 5}');
is(wait_job(sql("SELECT synchub.sync('hs5', 'full')")), "succeeded|1|$N", 'hubspot: a full import for the search test');
sleep 1;
mock('hubspot', 'POST', '/_mock/update', { token => 'search-token', count => 40, fields => { firstname => 'Searched' } });
mock('hubspot', 'POST', '/_mock/reset');
$job = sql("SELECT synchub.sync('hs5', 'incremental')");
like(wait_job($job), qr/^succeeded\|1\|/, 'hubspot: the incremental run of small search pages succeeded');
my @search = grep { $_->{path} =~ m{/contacts/search$} } @{ mock('hubspot', 'GET', '/_mock/requests') };
cmp_ok(scalar @search, '>=', 8, 'hubspot: it took ' . scalar(@search) . ' search requests');
is(scalar(grep { ($_->{status} // 0) == 429 } @search), 0, 'hubspot: no search request was refused');
my $most = 0;
for my $i (0 .. $#search)
{
	my $k = grep { $_->{t} >= $search[$i]{t} && $_->{t} < $search[$i]{t} + 1 } @search;
	$most = $k if $k > $most;
}
cmp_ok($most, '<=', 5, "hubspot: at most 5 search requests in any second ($most)");
is(sql("SELECT count(*) FROM synchub.contacts WHERE integration_id = $hs5 AND first_name = 'Searched'"), 40,
	'hubspot: every change arrived');

# Pages of different jobs that arrive together share a transaction; a page
# that fails to store (a trigger of its target raises) rolls back alone:
# the other import stores every page, the failing one keeps the pages
# before the bad record and reports the trigger's error.
mock('pipedrive', 'POST', '/_mock/accounts', [ { token => 'good-token', contacts => 200, seed => 11 },
	{ token => 'bad-token', contacts => 200, seed => 12 } ]);
# (55000 is not a record's fault: it fails the page, not one record)
sql(q{CREATE TABLE picky (LIKE synchub.contacts INCLUDING ALL);
	CREATE FUNCTION picky_check() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN IF NEW.external_id = '150' THEN
	          RAISE EXCEPTION 'picky refuses record %', NEW.external_id USING ERRCODE = 'object_not_in_prerequisite_state';
	      END IF;
	      RETURN NEW; END $$;
	CREATE TRIGGER picky_check BEFORE INSERT OR UPDATE ON picky FOR EACH ROW EXECUTE FUNCTION picky_check();});
my $good = integration('good', 'pipedrive', '{"token": "good-token"}', '{"page_size": 10, "rate_limit": {"requests": 1000, "per_seconds": 1}}');
my $bad = integration('bad', 'pipedrive', '{"token": "bad-token"}',
	'{"page_size": 10, "target": "picky", "rate_limit": {"requests": 1000, "per_seconds": 1}}');
my ($jg, $jb) = split /\|/, sql("SELECT synchub.sync('good', 'full') || '|' || synchub.sync('bad', 'full')");
is(wait_job($jg), 'succeeded|1|200', 'the other import stores all its pages');
is(stored($good), 200, 'all 200 of its rows');
ok($node->poll_query_until('postgres', "SELECT last_error LIKE '%picky refuses record 150%' FROM synchub.jobs WHERE id = $jb"),
	'the failing page reports the trigger error');
is(sql("SELECT count(*) FROM picky WHERE integration_id = $bad"), '140',
	'the pages before the bad record are stored, the failing page is not');
sql("SELECT synchub.cancel($jb)");

# A target owned by another role is written as that role: its trigger sees
# the table's owner, not the worker's superuser, and the export write-back
# of a provider id goes the same way.
mock('pipedrive', 'POST', '/_mock/accounts', [ { token => 'tenant-token', contacts => 20, seed => 13 } ]);
sql(q{CREATE ROLE regress_tenant;
	CREATE TABLE tenant_people (LIKE synchub.contacts INCLUDING ALL);
	CREATE TABLE tenant_log (who name, super boolean);
	CREATE FUNCTION tenant_who() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO tenant_log SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
	      RETURN NEW; END $$;
	CREATE TRIGGER tenant_who BEFORE INSERT OR UPDATE ON tenant_people FOR EACH ROW EXECUTE FUNCTION tenant_who();
	ALTER TABLE tenant_people OWNER TO regress_tenant;
	ALTER TABLE tenant_log OWNER TO regress_tenant;
	ALTER FUNCTION tenant_who() OWNER TO regress_tenant;});
my $tenant = integration('tenant', 'pipedrive', '{"token": "tenant-token"}',
	'{"page_size": 10, "target": "tenant_people", "rate_limit": {"requests": 1000, "per_seconds": 1}}');
my $jt = sql("SELECT synchub.sync('tenant', 'full')");
is(wait_job($jt), 'succeeded|1|20', 'an import into a table of another owner succeeds');
is(sql("SELECT count(*) FROM tenant_people WHERE integration_id = $tenant"), '20', 'all 20 rows stored');
is(sql("SELECT who || '|' || super || '|' || count(*) FROM tenant_log GROUP BY who, super"), 'regress_tenant|false|20',
	"the target's trigger ran as the table's owner, not as a superuser");
is(sql("SELECT synchub._exec_as_table_owner('tenant_people', 'UPDATE tenant_people SET email = \$2 WHERE external_id = \$1->>''id''', '{\"id\": \"1\"}', 'x\@example.com')"),
	'1', '_exec_as_table_owner writes one row');
is(sql("SELECT who || '|' || super FROM tenant_log ORDER BY ctid DESC LIMIT 1"), 'regress_tenant|false',
	'and its trigger runs as the owner too');

my $log = slurp_file($node->logfile);
unlike($log, qr/test-token|test-refresh|quota-token|dead-token|search-token|good-token|bad-token/, 'no credential in the server log');
unlike(sql("SELECT string_agg(concat_ws(' ', payload, checkpoint, result, last_error), ' ') FROM synchub.jobs"),
	qr/test-token|test-refresh|quota-token|dead-token|search-token|good-token|bad-token/, 'no credential in a job row');

$node->stop;
$_->kill_kill for @servers;
done_testing();
