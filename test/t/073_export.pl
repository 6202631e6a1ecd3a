# Export run by the worker against the mock CRM servers, for each provider:
# rows changed and created here reach the provider's store, the provider's
# ids are written back to the new rows, records the provider refuses land in
# synchub.rejects with its reason while the rest of the batch is written,
# and the round trip is stable (the next incremental import changes nothing
# and nothing the worker writes is exported again).  A batch the provider
# refuses as a whole is split and still delivered; a 429 during an export
# ends with the job succeeded.
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

my $N = 300;
my $dir = tempdir(CLEANUP => 1);
my @providers = qw(hubspot salesforce pipedrive);

my ($ports, $servers) = start_crm_mocks($dir, $N, 5, @providers);
my %port = %$ports;

my $node = synchub_node('export', "log_statement = none\n");
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub mock { my $p = shift; return crm_request($port{$p}, @_); }

sub wait_job
{
	my ($id) = @_;
	$node->poll_query_until('postgres', "SELECT state IN ('succeeded', 'dead') FROM synchub.jobs WHERE id = $id")
	  or diag(sql("SELECT state, attempts, last_error FROM synchub.jobs WHERE id = $id"));
	diag(sql("SELECT last_error FROM synchub.jobs WHERE id = $id AND state <> 'succeeded'"));
	return sql("SELECT concat_ws('|', state, attempts, result->>'inserted', result->>'updated', result->>'rejected')
	              FROM synchub.jobs WHERE id = $id");
}

# The mock's store by id, in a provider-neutral shape.
sub store
{
	my ($p) = @_;
	my $recs = mock($p, 'GET', '/_mock/contacts?token=test-token' . ($p eq 'pipedrive' ? '&format=v2' : ''));
	my %by_id;
	for my $r (@$recs)
	{
		my %n =
			$p eq 'hubspot'    ? (email => $r->{properties}{email}, last => $r->{properties}{lastname},
								  phone => $r->{properties}{phone}, company => $r->{properties}{company})
		  : $p eq 'salesforce' ? (email => $r->{Email}, last => $r->{LastName}, phone => $r->{Phone})
		  :                      (email => ($r->{emails}[0] // {})->{value}, last => $r->{name},
								  phone => ($r->{phones}[0] // {})->{value});
		$by_id{ $r->{id} // $r->{Id} } = \%n;
	}
	return \%by_id;
}

# Salesforce creates records by upserting on Email.
mock('salesforce', 'POST', '/_mock/accounts',
	{ token => 'test-token', contacts => $N, seed => 5, external_id_fields => ['Email'] });

my %bad_new = (
	hubspot    => "('not-an-email', 'Bad', 'Address')",
	salesforce => "('nolast\@export.test', 'No', NULL)",
	pipedrive  => "('noname\@export.test', NULL, NULL)");
my %reason = (
	hubspot    => qr/Email address not-an-email is invalid/,
	salesforce => qr/Required fields are missing: \[LastName\]/,
	pipedrive  => qr/HTTP 400.*name: Required/);

for my $p (@providers)
{
	my $opts = $p eq 'salesforce'
	  ? '{"export": true, "external_id_field": "Email", "write_key": "{email}"}' : '{"export": true}';
	my $iid = sql("SELECT synchub.create_integration('$p', '$p', 'http://127.0.0.1:$port{$p}',
		'{\"token\": \"test-token\"}', '$opts')");
	my $id = sql("SELECT synchub.sync('$p', 'full')");
	like(wait_job($id), qr/^succeeded\|1\|/, "$p: full import");
	is(sql("SELECT count(*) FROM synchub.outbox"), '0', "$p: the import queued nothing for export");

	# Three changed rows, two new ones, one the provider refuses, one
	# without the key HubSpot and Salesforce match on (Pipedrive needs none).
	my @upd = split /\n/, sql("SELECT external_id FROM synchub.contacts
		WHERE integration_id = $iid AND NOT archived AND email IS NOT NULL ORDER BY id LIMIT 3");
	my $list = join(',', map { "'$_'" } @upd);
	sql("UPDATE synchub.contacts SET last_name = 'Exported ' || external_id, phone = '+1 555 ' || external_id
	      WHERE integration_id = $iid AND external_id IN ($list)");
	sql("INSERT INTO synchub.contacts (integration_id, email, first_name, last_name)
	     VALUES ($iid, 'new1-$p\@export.test', 'New', 'One'), ($iid, 'new2-$p\@export.test', 'New', 'Two')");
	sql("INSERT INTO synchub.contacts (integration_id, email, first_name, last_name)
	     SELECT $iid, e, f, l FROM (VALUES $bad_new{$p}) v(e, f, l)");
	sql("INSERT INTO synchub.contacts (integration_id, email, first_name, last_name)
	     VALUES ($iid, NULL, 'Key', 'Less')") unless $p eq 'pipedrive';
	my $queued = $p eq 'pipedrive' ? 6 : 7;
	is(sql("SELECT count(*) FROM synchub.outbox WHERE integration_id = $iid"), $queued, "$p: $queued changes queued");

	mock($p, 'POST', '/_mock/reset');
	$id = sql("SELECT synchub.sync('$p', 'export')");
	my $rejected = $p eq 'pipedrive' ? 1 : 2;
	is(wait_job($id), "succeeded|1|2|3|$rejected", "$p: export succeeded: 2 created, 3 updated, $rejected rejected");
	is(sql("SELECT records_processed || '/' || records_total FROM synchub.jobs WHERE id = $id"), "$queued/$queued",
		"$p: progress counts every queued change");

	my $st = store($p);
	for my $x (@upd)
	{
		my $r = $st->{$x};
		ok($r && $r->{phone} eq "+1 555 $x" && $r->{last} =~ /Exported $x$/, "$p: change of $x is at the provider");
	}
	my %new = map { split /\|/ } split /\n/, sql("SELECT email || '|' || coalesce(external_id, '') FROM synchub.contacts
		WHERE integration_id = $iid AND email LIKE 'new_-$p\@export.test'");
	for my $e (sort keys %new)
	{
		ok($new{$e} ne '' && $st->{ $new{$e} } && lc($st->{ $new{$e} }{email}) eq lc($e),
			"$p: $e was created and its provider id $new{$e} written back");
	}
	my $rej = sql("SELECT string_agg(coalesce(error, ''), ' || ' ORDER BY id) FROM synchub.rejects WHERE job_id = $id");
	like($rej, $reason{$p}, "$p: the refused record is kept with the provider's reason");
	like($rej, qr/no value for the provider's key/, "$p: the row without a key is kept with the reason")
	  unless $p eq 'pipedrive';
	is(sql("SELECT count(*) FROM synchub.outbox WHERE integration_id = $iid"), '0', "$p: the outbox is empty");
	my $writes = grep { $_->{method} ne 'GET' && $_->{path} !~ m{/query|/search} }
	  @{ mock($p, 'GET', '/_mock/requests') };
	is($writes, $p eq 'pipedrive' ? 6 : 1, "$p: " . ($p eq 'pipedrive' ? 'one call per record' : 'one batch request'));

	# Round trip: importing the exported changes back changes nothing here
	# and queues nothing.
	my $before = sql("SELECT md5(string_agg(concat_ws('|', id, external_id, email, last_name, phone), ',' ORDER BY id))
	                    FROM synchub.contacts WHERE integration_id = $iid");
	sleep 1 if $p eq 'pipedrive';
	$id = sql("SELECT synchub.sync('$p', 'incremental')");
	like(wait_job($id), qr/^succeeded\|1\|/, "$p: incremental sync after the export");
	is(sql("SELECT md5(string_agg(concat_ws('|', id, external_id, email, last_name, phone), ',' ORDER BY id))
	          FROM synchub.contacts WHERE integration_id = $iid"), $before,
		"$p: the exported rows come back unchanged, no duplicates");
	is(sql("SELECT count(*) FROM synchub.outbox"), '0', "$p: the import of them queued nothing");
}

# HubSpot refuses a whole batch once (409): the batch is split and every
# record still arrives; then a 429 answer is waited out.
my $iid = sql("SELECT id FROM synchub.integrations WHERE name = 'hubspot'");
mock('hubspot', 'POST', '/_mock/reset');
mock('hubspot', 'POST', '/_mock/faults', [
	{ match => '/crm/v3/objects/contacts/batch/upsert', count => 1, status => 409,
	  body => { status => 'error', message => 'Contact already exists. Existing ID: 1', category => 'CONFLICT' } },
	{ match => '/crm/v3/objects/contacts/batch/upsert', after => 1, count => 1, status => 429,
	  headers => { 'Retry-After' => '1' },
	  body => { status => 'error', message => 'You have reached your secondly limit.', errorType => 'RATE_LIMIT' } } ]);
sql("UPDATE synchub.contacts SET company = 'Split ' || id
      WHERE id IN (SELECT id FROM synchub.contacts WHERE integration_id = $iid AND NOT archived
                      AND external_id IS NOT NULL AND email LIKE '%\@%' ORDER BY id LIMIT 5)");
my $id = sql("SELECT synchub.sync('hubspot', 'export')");
is(wait_job($id), 'succeeded|1|0|5|0', 'hubspot: a batch refused as a whole is split and all 5 records delivered');
my @statuses = map { $_->{status} } grep { $_->{path} =~ m{/batch/upsert} } @{ mock('hubspot', 'GET', '/_mock/requests') };
is(join(',', $statuses[0], sort @statuses[1 .. $#statuses]), '409,200,200,429',
	'hubspot: 409 for the batch, then its two halves, one of them again after a 429');
my $st = store('hubspot');
my %split = map { split /\|/ } split /\n/,
  sql("SELECT external_id || '|' || company FROM synchub.contacts WHERE company LIKE 'Split %'");
is(scalar(grep { ($st->{$_}{company} // '') eq $split{$_} } keys %split), 5,
	'hubspot: the split records are at the provider');
is(sql("SELECT count(*) FROM synchub.rejects WHERE job_id = $id"), '0', 'hubspot: nothing rejected');

done_testing();
