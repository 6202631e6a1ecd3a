# The provider presets against the mock CRM servers: a loop that does what
# the worker will do (plan a request, send it, parse the page, upsert the
# rows, keep the checkpoint) reads every contact exactly once for each
# provider and mode, sees deletes and archives, pages past HubSpot's search
# cap, restarts an expired Salesforce query locator, refreshes an expired
# OAuth token once, and classifies throttling.
use strict;
use warnings;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $N = 300;
my $dir = tempdir(CLEANUP => 1);
my $json = JSON::PP->new->canonical;

# Start the three mock servers.
my (%port, @servers);
for my $p (qw(hubspot salesforce pipedrive))
{
	my @extra = $p eq 'hubspot' ? ('--search-cap', '50') : ();
	push @servers, IPC::Run::start(
		[ 'python3', 'test/mock/crm.py', '--provider', $p, '--contacts', $N, '--seed', '5',
		  '--port', '0', '--port-file', "$dir/$p.port", @extra ],
		'>', "$dir/$p.out", '2>&1');
}
for my $p (qw(hubspot salesforce pipedrive))
{
	for (1 .. 200)
	{
		last if -s "$dir/$p.port";
		select(undef, undef, undef, 0.05);
	}
	($port{$p}) = slurp_file("$dir/$p.port") =~ /(\d+)/;
	ok($port{$p}, "$p mock listens on port $port{$p}");
}

my $node = PostgreSQL::Test::Cluster->new('connectors');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'synchub'\nsynchub.notify = off\nlog_statement = none");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION synchub');

my $http = HTTP::Tiny->new(timeout => 10);

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub lit { my $v = shift; return defined $v ? "\$j\$$v\$j\$::jsonb" : 'NULL'; }

sub mock
{
	my ($p, $path, $body) = @_;
	my $r = $http->request('POST', "http://127.0.0.1:$port{$p}$path",
		{ content => $json->encode($body), headers => { 'content-type' => 'application/json' } });
	return decode_json($r->{content});
}

# One request: plan (real credential), send, parse.
sub step
{
	my ($iid, $prov, $mode, $ck) = @_;
	my $req = decode_json(sql("SELECT synchub._provider_request($iid, '$mode', " . lit($ck) . ")"));
	my $r = $http->request($req->{method}, $req->{url},
		{ headers => $req->{headers},
		  defined $req->{body} ? (content => $json->encode($req->{body})) : () });
	my $status = $r->{status} == 599 ? 'NULL' : $r->{status};
	my %h = map { $_ => (ref $r->{headers}{$_} ? $r->{headers}{$_}[0] : $r->{headers}{$_}) } keys %{ $r->{headers} };
	my $body = eval { decode_json($r->{content}); 1 } ? $r->{content} : undef;
	my $page = sql("SELECT synchub._provider_parse_page('$prov', '$mode', "
		  . lit($json->encode($req->{checkpoint})) . ", $status, " . lit($json->encode(\%h)) . ", "
		  . lit($body) . ")");
	return decode_json($page);
}

# A whole run, as the worker will do it: each page's rows and checkpoint in
# one transaction.  $on_error decides what an error does (default: stop).
sub run_sync
{
	my ($iid, $prov, $mode, %opt) = @_;
	my ($ck, %seen, $page) = (undef);
	my %res = (pages => 0, records => 0, errors => []);
	for (1 .. 500)
	{
		$page = step($iid, $prov, $mode, $ck);
		$res{pages}++;
		if ($page->{error})
		{
			push @{ $res{errors} }, $page->{error};
			my $next = $opt{on_error} ? $opt{on_error}->($page) : undef;
			last unless defined $next;
			$ck = $next;
			next;
		}
		$seen{ $_->{id} // $_->{Id} }++ for @{ $page->{records} };
		$res{records} += $page->{count};
		$res{total} = $page->{records_total} if defined $page->{records_total};
		sql("BEGIN;
			INSERT INTO synchub.contacts AS c (integration_id, external_id, email, first_name, last_name,
			                                   company, phone, properties, remote_updated_at, archived)
			SELECT integration_id, external_id, email, first_name, last_name, company, phone, properties,
			       remote_updated_at, archived
			  FROM jsonb_populate_recordset(NULL::synchub.contacts,
			                                synchub._provider_map_rows($iid, " . lit($json->encode($page->{records})) . "))
			ON CONFLICT (integration_id, external_id) DO UPDATE
			   SET email = excluded.email, first_name = excluded.first_name, last_name = excluded.last_name,
			       company = excluded.company, phone = excluded.phone, properties = excluded.properties,
			       remote_updated_at = excluded.remote_updated_at, archived = excluded.archived,
			       synced_at = now();
			COMMIT;");
		$ck = $json->encode($page->{checkpoint});
		$opt{after_page}->($page, \$ck) if $opt{after_page};
		if ($page->{done})
		{
			sql("INSERT INTO synchub.sync_state (integration_id, bookmark) VALUES ($iid, "
				  . lit($json->encode($page->{bookmark})) . ")
				 ON CONFLICT (integration_id) DO UPDATE SET bookmark = excluded.bookmark");
			$res{done} = 1;
			last;
		}
	}
	$res{distinct} = scalar keys %seen;
	$res{repeated} = scalar grep { $seen{$_} > 1 } keys %seen;
	return \%res;
}

sub contacts
{
	my $iid = shift;
	return sql("SELECT count(*) || '/' || count(*) FILTER (WHERE archived) FROM synchub.contacts WHERE integration_id = $iid");
}

# ---- HubSpot ----
sql("INSERT INTO synchub.providers SELECT 'hubspot_cap50', jsonb_set(spec, '{requests,search,result_cap}', '50')
       FROM synchub.providers WHERE name = 'hubspot'");
my $hs = sql("SELECT synchub.create_integration('hs', 'hubspot_cap50', 'http://127.0.0.1:$port{hubspot}',
	'{\"token\": \"test-token\", \"refresh_token\": \"test-refresh\"}', '{\"page_size\": 20}')");
mock('hubspot', '/_mock/archive', { token => 'test-token', count => 4 });

my $r = run_sync($hs, 'hubspot_cap50', 'full');
ok($r->{done}, 'hubspot full import finishes');
is($r->{distinct}, $N, 'hubspot full import reads every contact, live and archived');
is($r->{repeated}, 0, 'and none twice');
is(contacts($hs), "$N/4", 'hubspot: contacts stored, the 4 archived ones flagged');

# Incremental from the beginning: the search pages past its cap of 50 by
# slicing on (lastmodifieddate, id); 30 contacts share one timestamp.
sql("DELETE FROM synchub.sync_state WHERE integration_id = $hs");
$r = run_sync($hs, 'hubspot_cap50', 'incremental');
ok($r->{done}, 'hubspot incremental finishes past the search cap');
is($r->{errors}->@*, 0, 'no search request pages past the cap');
is($r->{distinct}, $N, 'every contact read once by the search slices and the archived list');
is($r->{repeated}, 0, 'no contact read twice');
is($r->{total}, $N - 4, 'records_total from the search totals');

# Changes since the bookmark; an expired token is refreshed once.
my $changed = mock('hubspot', '/_mock/update', { token => 'test-token', count => 5, fields => { firstname => 'Zed' } })->{ids};
mock('hubspot', '/_mock/expire', { token => 'test-token' });
my $refreshed = 0;
$r = run_sync($hs, 'hubspot_cap50', 'incremental', on_error => sub {
	my $page = shift;
	return undef unless $page->{error}{class} eq 'auth' && $page->{error}{refresh} && !$refreshed++;
	my $req = decode_json(sql("SELECT synchub._provider_refresh_request($hs)"));
	my $resp = $http->request('POST', $req->{url}, { headers => $req->{headers}, content => $req->{body_text} });
	sql("SELECT synchub._provider_refresh_apply($hs, " . lit($resp->{content}) . ")") eq 't' or return undef;
	return $json->encode($page->{checkpoint});
});
ok($r->{done}, 'hubspot incremental after a token expiry finishes');
is($r->{errors}[0]{class}, 'auth', 'the expired token is an auth error');
is($refreshed, 1, 'refreshed once');
is(sql("SELECT count(*) FROM synchub.contacts WHERE integration_id = $hs AND first_name = 'Zed'"), 5,
	'the 5 changed contacts are updated');
cmp_ok($r->{distinct}, '<', 50, 'the incremental run reads only recent changes (and the archived list)');
unlike(sql("SELECT synchub._credentials_get($hs)->>'access_token'"), qr/^test-token$/, 'a new access token is stored');

# ---- Salesforce ----
my $sf = sql("SELECT synchub.create_integration('sf', 'salesforce', 'http://127.0.0.1:$port{salesforce}',
	'{\"access_token\": \"test-token\"}', '{\"page_size\": 200}')");
$r = run_sync($sf, 'salesforce', 'full');
ok($r->{done}, 'salesforce full import finishes');
is($r->{distinct}, $N, 'salesforce full import reads every contact once');
is($r->{pages}, 2, 'in batches of 200 by nextRecordsUrl');
is($r->{total}, $N, 'records_total is totalSize');
my $deleted = mock('salesforce', '/_mock/archive', { token => 'test-token', count => 3 })->{ids};
mock('salesforce', '/_mock/update', { token => 'test-token', count => 2, fields => { FirstName => 'Zed' } });
$r = run_sync($sf, 'salesforce', 'incremental');
ok($r->{done}, 'salesforce incremental finishes');
is(contacts($sf), "$N/3", 'salesforce: deletions arrive through queryAll as archived');
is(sql("SELECT count(*) FROM synchub.contacts WHERE integration_id = $sf AND first_name = 'Zed'"), 2,
	'salesforce: updates arrive');
# An expired query locator: restart from the last committed record.
sql("DELETE FROM synchub.sync_state WHERE integration_id = $sf");
my $broke = 0;
$r = run_sync($sf, 'salesforce', 'incremental',
	after_page => sub {
		my ($page, $ckref) = @_;
		return if $broke++ || !$page->{checkpoint}{cursor};
		my $c = $page->{checkpoint};
		$c->{cursor} =~ s{/[^/]+$}{/01gBOGUS-200};
		$$ckref = $json->encode($c);
	},
	on_error => sub { my $p = shift; $p->{error}{class} eq 'restart' ? $json->encode($p->{checkpoint}) : undef });
ok($r->{done}, 'salesforce run with an expired locator finishes');
is($r->{errors}[0]{class}, 'restart', 'the unknown locator is a restart');
is($r->{distinct}, $N, 'every contact read, none lost');
is($r->{repeated}, 0, 'none read twice after the restart');

# ---- Pipedrive ----
my $pd = sql("SELECT synchub.create_integration('pd', 'pipedrive', 'http://127.0.0.1:$port{pipedrive}',
	'{\"api_token\": \"test-token\"}', '{\"page_size\": 100}')");
$r = run_sync($pd, 'pipedrive', 'full');
ok($r->{done}, 'pipedrive full import finishes');
is($r->{distinct}, $N, 'pipedrive full import reads every person once');
is(sql("SELECT count(*) FROM synchub.contacts WHERE integration_id = $pd AND email LIKE '%\@%'"), $N,
	'pipedrive emails mapped from emails[0].value');
mock('pipedrive', '/_mock/update', { token => 'test-token', count => 4, fields => { name => 'Zed Zed' } });
$r = run_sync($pd, 'pipedrive', 'incremental');
ok($r->{done}, 'pipedrive incremental finishes');
cmp_ok($r->{distinct}, '>=', 4, 'pipedrive incremental sees the changes');
cmp_ok($r->{distinct}, '<', 50, 'and little else');
# Throttling: an account with 1 request per 3 s.
mock('pipedrive', '/_mock/accounts', { token => 'slow-token', contacts => 10, rate_limit => { requests => 1, per_seconds => 3 } });
sql("SELECT synchub.set_credentials('pd', '{\"api_token\": \"slow-token\"}')");
sql("UPDATE synchub.integrations SET options = options || '{\"page_size\": 5}' WHERE id = $pd");
$r = run_sync($pd, 'pipedrive', 'full', on_error => sub {
	my $p = shift;
	return undef unless $p->{error}{class} eq 'rate_limited';
	select(undef, undef, undef, ($p->{error}{wait_ms} // 1000) / 1000);
	return $json->encode($p->{checkpoint});
});
ok($r->{done}, 'pipedrive run under a rate limit finishes');
ok(scalar(@{ $r->{errors} }) >= 1, 'the limit was hit');
is($r->{errors}[0]{class}, 'rate_limited', 'as rate_limited');
ok(defined $r->{errors}[0]{wait_ms} && $r->{errors}[0]{wait_ms} <= 3000, 'with a wait from x-ratelimit-reset');
is($r->{distinct}, 10, 'every person read once');

# Nothing secret in the server log.
my $log = slurp_file($node->logfile);
unlike($log, qr/test-token|test-refresh|slow-token/, 'no credential in the server log');

$node->stop;
$_->kill_kill for @servers;
done_testing();
