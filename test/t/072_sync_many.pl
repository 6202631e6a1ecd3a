# Ten integrations syncing at once (4 HubSpot, 3 Salesforce, 3 Pipedrive),
# each its own mock CRM account with its own token, data and, for six of
# them, a rate budget set both on the integration and on the mock account.
# Once the worker has the budgets, ten full imports enqueued in one
# transaction all succeed in one attempt while running at the same time;
# each integration's rows equal its own account's store field by field and
# carry no other account's data; no account ever sees more requests in a
# window than its budget, and none is throttled, while the budgeted
# accounts together exceed any one budget (the budgets are per
# integration).  A second round of ten incremental syncs at once picks up
# exactly the records changed in three accounts and leaves every other row
# unwritten.
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

my $dir = tempdir(CLEANUP => 1);
my $json = JSON::PP->new->canonical;
my @providers = qw(hubspot salesforce pipedrive);
my %page_size = (hubspot => 100, salesforce => 200, pipedrive => 100);
# The provider presets' documented windows, used when an integration has no
# rate_limit option (Salesforce documents none).
my %default_budget = (hubspot => [ 100, 10 ], pipedrive => [ 20, 2 ]);

# name, provider, contacts, seed, budget [requests, per_seconds] or none.
# The budgets are tight enough that the budgeted runs must wait for them.
my @accounts = (
	[ 'hs-1', 'hubspot', 1200, 101, [ 3, 1 ] ],
	[ 'hs-2', 'hubspot', 1000, 102, [ 6, 2 ] ],
	[ 'hs-3', 'hubspot', 1500, 103, undef ],
	[ 'hs-4', 'hubspot', 1300, 104, undef ],
	[ 'sf-1', 'salesforce', 1400, 201, [ 2, 1 ] ],
	[ 'sf-2', 'salesforce', 1100, 202, undef ],
	[ 'sf-3', 'salesforce', 1000, 203, [ 3, 2 ] ],
	[ 'pd-1', 'pipedrive', 1500, 301, [ 3, 1 ] ],
	[ 'pd-2', 'pipedrive', 1250, 302, undef ],
	[ 'pd-3', 'pipedrive', 1000, 303, [ 4, 2 ] ],
);
my %acct = map {
	$_->[0] => { name => $_->[0], provider => $_->[1], contacts => $_->[2], seed => $_->[3],
		budget => $_->[4], token => "tok-$_->[0]-" . (7919 * $_->[3]) }
} @accounts;
my @names = map { $_->[0] } @accounts;

# The servers' own account (test-token) is not used.
my ($ports, $servers) = start_crm_mocks($dir, 10, 1, @providers);
my %port = %$ports;
my @servers = @$servers;

sub mock { my $p = shift; return crm_request($port{$p}, @_); }

for my $p (@providers)
{
	my @cfg = map {
		{ token => $_->{token}, contacts => $_->{contacts}, seed => $_->{seed},
		  $_->{budget} ? (rate_limit => { requests => $_->{budget}[0], per_seconds => $_->{budget}[1] }) : () }
	} grep { $_->{provider} eq $p } map { $acct{$_} } @names;
	mock($p, 'POST', '/_mock/accounts', \@cfg);
}

my $node = synchub_node('sync_many', "log_statement = none\n");
sub sql { return $node->safe_psql('postgres', $_[0]); }

for my $n (@names)
{
	my $a = $acct{$n};
	my %o = (page_size => $page_size{ $a->{provider} });
	$o{rate_limit} = { requests => $a->{budget}[0], per_seconds => $a->{budget}[1] } if $a->{budget};
	$a->{iid} = sql("SELECT synchub.create_integration('$n', '$a->{provider}', 'http://127.0.0.1:$port{$a->{provider}}',
		'{\"token\": \"$a->{token}\"}', '" . $json->encode(\%o) . "')");
	# the budget the worker enforces, and which the account must never exceed
	$a->{limit} = $a->{budget} // $default_budget{ $a->{provider} };
}

# Enqueue one sync per integration in a single statement (one transaction);
# wait until every one has finished; returns {name => job id}.
sub sync_all
{
	my ($mode) = @_;
	my %job = map { split /\|/ } split /\n/,
	  sql("SELECT n, synchub.sync(n, '$mode') FROM unnest(ARRAY['" . join("','", @names) . "']) n");
	is(scalar(keys %job), 10, "$mode: ten jobs enqueued in one transaction");
	my $ids = join(',', values %job);
	local $PostgreSQL::Test::Utils::timeout_default = 180;
	ok($node->poll_query_until('postgres',
		"SELECT count(*) = 10 FROM synchub.jobs WHERE id IN ($ids) AND state IN ('succeeded', 'dead')"),
		"$mode: all ten jobs finished")
	  or diag(sql("SELECT string_agg(concat_ws(' ', id, state, attempts, records_processed, last_error), E'\\n')
		FROM synchub.jobs WHERE id IN ($ids)"));
	return \%job;
}

# "state|attempts|records_processed|integration_id" of a job.
sub job_row
{
	my ($id) = @_;
	return sql("SELECT concat_ws('|', state, attempts, records_processed, integration_id) FROM synchub.jobs WHERE id = $id");
}

# Every account's store, mapped by its integration's field map, into table
# mock_rows (explicit columns: synchub.contacts may gain more).
my $COLS = 'external_id, email, first_name, last_name, company, phone, remote_updated_at, archived';
sql("CREATE TABLE mock_rows (integration_id bigint, external_id text, email text, first_name text,
	last_name text, company text, phone text, remote_updated_at timestamptz, archived boolean, properties jsonb)");

sub load_stores
{
	sql('TRUNCATE mock_rows');
	for my $n (@names)
	{
		my $a = $acct{$n};
		my $store = mock($a->{provider}, 'GET',
			"/_mock/contacts?token=$a->{token}" . ($a->{provider} eq 'pipedrive' ? '&format=v2' : ''));
		my $lit = $json->encode($store);
		$lit =~ s/\$m\$//g;
		sql(qq{INSERT INTO mock_rows
			SELECT $a->{iid}, $COLS, properties
			  FROM jsonb_populate_recordset(NULL::synchub.contacts,
			                                synchub._provider_map_rows($a->{iid}, \$m\$$lit\$m\$::jsonb))});
	}
}

# Per integration "typed differences/property differences/store rows/table
# rows" between its rows and its own account's store.
sub differences
{
	my %d = map { split /=/ } split /\n/, sql(qq{
		SELECT i.name || '=' ||
		  (SELECT count(*) FROM (
		     (SELECT $COLS FROM mock_rows WHERE integration_id = i.id
		      EXCEPT SELECT $COLS FROM synchub.contacts WHERE integration_id = i.id)
		     UNION ALL
		     (SELECT $COLS FROM synchub.contacts WHERE integration_id = i.id
		      EXCEPT SELECT $COLS FROM mock_rows WHERE integration_id = i.id)) d) || '/' ||
		  (SELECT count(*) FROM synchub.contacts c JOIN mock_rows m USING (integration_id, external_id)
		    WHERE c.integration_id = i.id
		      AND ((c.properties IS NULL) <> (m.properties IS NULL)
		           OR EXISTS (SELECT FROM jsonb_each(c.properties) e
		                       WHERE m.properties ? e.key AND m.properties -> e.key <> e.value))) || '/' ||
		  (SELECT count(*) FROM mock_rows WHERE integration_id = i.id) || '/' ||
		  (SELECT count(*) FROM synchub.contacts WHERE integration_id = i.id)
		  FROM synchub.integrations i});
	return \%d;
}

sub check_tables
{
	my ($label) = @_;
	load_stores();
	my $d = differences();
	for my $n (@names)
	{
		my $c = $acct{$n}{contacts};
		is($d->{$n}, "0/0/$c/$c", "$label: $n equals its account's $c contacts field by field");
	}
	# Accounts of one provider share external ids (they number their
	# records alike), so a row carrying another account's data could hide
	# behind a right id: no row of one integration matches another
	# account's record unless its own account has that very record.
	my $same = 'ROW(m.email, m.first_name, m.last_name, m.company, m.phone, m.remote_updated_at, m.archived)'
	  . ' IS NOT DISTINCT FROM ROW(c.email, c.first_name, c.last_name, c.company, c.phone, c.remote_updated_at, c.archived)';
	is(sql(qq{
		SELECT count(*) FROM synchub.contacts c
		 WHERE EXISTS (SELECT FROM mock_rows m WHERE m.external_id = c.external_id
		                  AND m.integration_id <> c.integration_id AND $same)
		   AND NOT EXISTS (SELECT FROM mock_rows m WHERE m.external_id = c.external_id
		                  AND m.integration_id = c.integration_id AND $same)}),
		0, "$label: no integration holds another account's record");
	my $total = 0;
	$total += $acct{$_}{contacts} for @names;
	is(sql('SELECT count(*) FROM synchub.contacts'), $total, "$label: $total rows in all, none outside the ten");
}

# Per account: the mock never saw more than the budget in any window, and
# never throttled.
sub check_budgets
{
	my ($label) = @_;
	for my $p (@providers)
	{
		my $stats = mock($p, 'GET', '/_mock/stats?windows=1,2,10');
		for my $a (grep { $_->{provider} eq $p } map { $acct{$_} } @names)
		{
			my $s = $stats->{accounts}{ $a->{token} } // {};
			if ($a->{limit})
			{
				my ($r, $w) = @{ $a->{limit} };
				my $seen = $s->{max_in_window}{$w} // -1;
				cmp_ok($seen, '<=', $r, "$label: $a->{name} saw at most $r requests in any $w s ($seen)");
			}
			is($s->{throttled} // -1, 0, "$label: $a->{name} was never throttled (" . ($s->{requests} // 0) . ' requests)');
		}
	}
}

###########################################################################
# Round 1: ten full imports at once.
# The syncs start right after the integrations were created: the worker
# loads a new integration's budget before its first request, so no window
# is exceeded even in the first second.
my $t0 = time;
my $job = sync_all('full');
note('full imports: ' . (time - $t0) . ' s');
for my $n (@names)
{
	is(job_row($job->{$n}), "succeeded|1|$acct{$n}{contacts}|$acct{$n}{iid}",
		"full: $n succeeded in one attempt with its $acct{$n}{contacts} records");
	# the result counts the whole run, across the waits for the budget
	is(sql("SELECT result->>'inserted' FROM synchub.jobs WHERE id = $job->{$n}"), $acct{$n}{contacts},
		"full: $n result counts all $acct{$n}{contacts} inserted rows");
}
check_tables('full');
check_budgets('full');

# The runs overlapped: from the mock's request log, each account's span
# [first request, last request]; at the latest of the first requests every
# account whose span contains that instant was being synced.  Jobs run one
# after another would give 1.
my (%span, %times);
for my $p (@providers)
{
	for my $r (@{ mock($p, 'GET', '/_mock/requests') })
	{
		my $k = $r->{account} // next;
		push @{ $times{$k} }, $r->{t};
	}
}
for my $n (@names)
{
	my @t = sort { $a <=> $b } @{ $times{ $acct{$n}{token} } // [] };
	$span{$n} = [ $t[0] // 0, $t[-1] // 0 ];
	note(sprintf('%s: %d requests over %.2f s', $n, scalar @t, $span{$n}[1] - $span{$n}[0]));
}
my $overlap = 0;
for my $n (@names)
{
	my $at = $span{$n}[0];
	my $k = grep { $span{$_}[0] <= $at && $at <= $span{$_}[1] } @names;
	$overlap = $k if $k > $overlap;
}
cmp_ok($overlap, '>=', 8, "full: $overlap of the ten imports were running at one instant");

# The budgets are the integrations' own, not shared: the three accounts with
# a budget per 1 s together got more requests in some second than any one
# of those budgets allows.
my @one_s = grep { $acct{$_}{budget} && $acct{$_}{budget}[1] == 1 } @names;
my @merged = sort { $a <=> $b } map { @{ $times{ $acct{$_}{token} } } } @one_s;
my ($most, $j) = (0, 0);
for my $i (0 .. $#merged)
{
	$j++ while $merged[$i] - $merged[$j] >= 1;
	$most = $i - $j + 1 if $i - $j + 1 > $most;
}
my $max_budget = 0;
for (@one_s) { $max_budget = $acct{$_}{budget}[0] if $acct{$_}{budget}[0] > $max_budget; }
cmp_ok($most, '>', $max_budget, "full: @one_s together sent $most requests in one second (budgets are per integration)");

###########################################################################
# Round 2: changes in three accounts, ten incremental syncs at once.
my %fields = (hubspot => { firstname => 'Zed' }, salesforce => { FirstName => 'Zed' }, pipedrive => { name => 'Zed Zed' });
my %change = ('hs-2' => 4, 'sf-1' => 3, 'pd-3' => 5);
my @expected;
for my $n (sort keys %change)
{
	my $a = $acct{$n};
	my $ids = mock($a->{provider}, 'POST', '/_mock/update',
		{ token => $a->{token}, count => $change{$n}, fields => $fields{ $a->{provider} } })->{ids};
	is(scalar @$ids, $change{$n}, "$n: $change{$n} records changed at the provider");
	push @expected, map { "$a->{iid}:$_" } @$ids;
}
my $expected = join(',', sort @expected);
mock($_, 'POST', '/_mock/reset') for @providers;

sql("CREATE TABLE snap AS SELECT integration_id, external_id, xmin::text AS x, synced_at,
	md5(row($COLS, properties)::text) AS h FROM synchub.contacts");

$job = sync_all('incremental');
for my $n (@names)
{
	my $c = $change{$n} // 0;
	like(job_row($job->{$n}), qr/^succeeded\|1\|\d+\|$acct{$n}{iid}$/, "incremental: $n succeeded in one attempt");
	my $read = sql("SELECT records_processed FROM synchub.jobs WHERE id = $job->{$n}");
	ok($read >= $c && $read < 200, "incremental: $n read only recent changes ($read records, $c changed)");
}
check_tables('incremental');
check_budgets('incremental');

my $key = "string_agg(integration_id || ':' || external_id, ',' ORDER BY (integration_id || ':' || external_id) COLLATE \"C\")";
is(sql("SELECT $key FROM synchub.contacts c JOIN snap s USING (integration_id, external_id)
	WHERE md5(row($COLS, properties)::text) <> s.h"),
	$expected, 'incremental: exactly the changed records changed');
is(sql("SELECT $key FROM synchub.contacts c JOIN snap s USING (integration_id, external_id)
	WHERE c.xmin::text <> s.x"),
	$expected, 'incremental: no other row was written');
is(sql("SELECT $key FROM synchub.contacts WHERE first_name = 'Zed'"), $expected,
	'incremental: the changed records carry the new name');
is(sql("SELECT $key FROM synchub.contacts c JOIN snap s USING (integration_id, external_id)
	WHERE c.synced_at > s.synced_at"),
	$expected, 'incremental: synced_at moved for exactly the rows written');

$node->stop;
$_->kill_kill for @servers;
done_testing();
