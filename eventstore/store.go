package eventstore

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoso-ledger/hoso"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// StreamName is the name of the ledger's stream.
const StreamName = "HOSO_EVENTS"

// DefaultDuplicateWindow is how long JetStream remembers Msg-Ids: long enough
// for a desk system's retries across a night. Past it, the ingest service
// still recognises a re-sent id from the dossier's own history.
const DefaultDuplicateWindow = 24 * time.Hour

// PublishAckTimeout bounds the wait for JetStream's acknowledgement of an
// append. On a cluster, an append sent to a stream leader that dies before
// it answers is never answered, and without a bound the ingester would wait
// for it for ever while holding its dossiers' locks (found by
// TestClusterNodeKilledAndRestarted). Past it the append is refused as an
// internal error: the sender retries, and the event's id makes a retry of
// an append that was stored after all a duplicate.
const PublishAckTimeout = 10 * time.Second

// Config says where the ledger lives.
type Config struct {
	// DataDir holds the embedded server's JetStream files (DataDir/nats).
	DataDir string
	// URL, when set, connects to an existing NATS server or cluster instead
	// of starting the embedded one.
	URL string
	// Listen is the embedded server's client address (host:port); port 0
	// picks a free one. Desk systems and the nats CLI connect there.
	Listen string
	// Replicas of the stream; 3 on a cluster, 1 for the embedded server.
	Replicas int
	// DuplicateWindow is the stream's Msg-Id deduplication window.
	DuplicateWindow time.Duration
	Logger          *slog.Logger
	// Credentials authenticates the ledger's connection to URL: a .creds
	// file or an NKey seed file. The embedded server generates its own.
	Credentials string
	// CalloutKey, with URL, is the file of the account key seed that signs
	// the desks' NATS users (DeskCallout): the servers' auth_callout
	// issuer. Empty: the cluster makes no desk principal a NATS user. The
	// embedded server generates its own (CalloutKeyFile).
	CalloutKey string
	// CalloutAccount, with URL, is the account desks are placed in: the
	// ledger's own (HOSO in deploy/nats/accounts.conf).
	CalloutAccount string
	// TLS, when set, makes the embedded server's client port take TLS
	// connections only, with this configuration's certificate. The
	// ledger's own connection is in-process and needs none.
	TLS *tls.Config
	// CAFile is a PEM file of the certificate authorities to trust on URL,
	// instead of the system's (a cluster with its own CA).
	CAFile string
	// ReadOnly opens existing streams without creating or updating them
	// (hoso verify).
	ReadOnly bool
	// SubjectBuckets lays a new stream out in that many bucket subjects
	// instead of one subject per dossier, so that the server's memory does
	// not grow with every dossier (docs/scaling.md). 0 takes the layout of
	// the existing stream, or one subject per dossier for a new one; a
	// stream's layout never changes, and a value other than its own is an
	// error.
	SubjectBuckets int
	// MaxBytes caps the stream's size on disk (0: no cap, the server's own
	// storage limit). Past it JetStream refuses new events, and so does the
	// ingester, with EUNAVAILABLE, rather than the disk filling up under
	// the server. A new value applies at the next start.
	MaxBytes int64
	// IndexSnapshot, for a bucketed stream, is the file where the dossier
	// index is kept between starts (snapshot.go): loaded when the store
	// opens, so that only the stream's tail after it is read, written
	// every IndexSnapshotInterval and when the store closes. Empty: none,
	// the index is read from the whole stream at every start.
	IndexSnapshot         string
	IndexSnapshotInterval time.Duration
}

// bucketsMetadata is the stream metadata key that records its layout.
const bucketsMetadata = "hoso.subject_buckets"

// Store is the ledger's stream: append, load and read.
type Store struct {
	cfg    Config
	log    *slog.Logger
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream

	checkpoints jetstream.Stream
	// lock keeps other processes off the embedded server's data directory.
	lock *dirLock
	// feed is the one following read shared by every Read with follow.
	feed *feed
	// ledgerAuth authenticates further connections as the ledger's role;
	// nil when the server needs none.
	ledgerAuth nats.Option
	// calloutIssuer signs the desks' NATS users, placed in calloutAccount;
	// nil when the server has no authorization callout for them.
	calloutIssuer  nkeys.KeyPair
	calloutAccount string
	// calloutConn answers the callout: the embedded server's own callout
	// user's, or on a cluster the ledger's connection (nc).
	calloutConn *nats.Conn

	// buckets is the stream's number of bucket subjects, 0 for one subject
	// per dossier; index, for a bucketed stream the process appends to,
	// follows the stream (index.go), from a goroutine that stopIndex ends.
	buckets   uint32
	index     *dossierIndex
	stopIndex context.CancelFunc
	indexWG   sync.WaitGroup
	// indexSnapshotSeq is the sequence the index was loaded at from its
	// snapshot, 0 when it was read from the whole stream.
	indexSnapshotSeq uint64

	// full is set when the stream refused an append for lack of space and
	// cleared by the next append it stores (StorageFull).
	full atomic.Bool
}

// Open starts the embedded server (or connects to cfg.URL) and makes sure the
// stream exists with the ledger's configuration.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.DuplicateWindow <= 0 {
		cfg.DuplicateWindow = DefaultDuplicateWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg, log: cfg.Logger}
	var opts []nats.Option
	opts = append(opts, nats.Name("hoso"), nats.MaxReconnects(-1))
	url := cfg.URL
	if url == "" {
		if cfg.DataDir == "" {
			return nil, errors.New("embedded NATS needs a data directory")
		}
		lock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		s.lock = lock
		srv, keys, err := startServer(cfg)
		if err != nil {
			s.Close()
			return nil, err
		}
		auth, err := nkeyOption(keys.ledger)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.srv, s.ledgerAuth = srv, auth
		if s.calloutConn, err = connectCallout(srv, keys.callout); err != nil {
			s.Close()
			return nil, err
		}
		s.calloutIssuer, s.calloutAccount = keys.issuer, server.DEFAULT_GLOBAL_ACCOUNT
		opts = append(opts, auth)
		// In-process: no TCP between the ledger and its own server, and
		// no TLS either (a tls:// URL would ask for it).
		url = strings.Replace(srv.ClientURL(), "tls://", "nats://", 1)
		opts = append(opts, nats.InProcessServer(srv))
	}
	if cfg.URL != "" && cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	if cfg.URL != "" && cfg.Credentials != "" {
		auth, err := credentialsOption(cfg.Credentials)
		if err != nil {
			return nil, err
		}
		s.ledgerAuth = auth
		opts = append(opts, auth)
	}
	if cfg.URL != "" && cfg.CalloutKey != "" {
		issuer, err := loadNKey(cfg.CalloutKey)
		if err != nil {
			return nil, fmt.Errorf("nats callout key: %w", err)
		}
		if pub, err := issuer.PublicKey(); err != nil || !nkeys.IsValidPublicAccountKey(pub) {
			return nil, fmt.Errorf("nats callout key %s: not an account key (its public key starts with A)", cfg.CalloutKey)
		}
		s.calloutIssuer, s.calloutAccount = issuer, cmp.Or(cfg.CalloutAccount, "HOSO")
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	s.nc = nc
	if s.calloutConn == nil {
		s.calloutConn = nc
	}
	if s.js, err = jetstream.New(nc, jetstream.WithPublishAsyncTimeout(PublishAckTimeout)); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.chooseLayout(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if cfg.ReadOnly {
		if s.stream, err = s.js.Stream(ctx, StreamName); err != nil {
			s.Close()
			return nil, fmt.Errorf("stream %s: %w", StreamName, err)
		}
		if s.checkpoints, err = s.js.Stream(ctx, CheckpointStreamName); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			s.Close()
			return nil, fmt.Errorf("stream %s: %w", CheckpointStreamName, err)
		}
		s.feed = newFeed(s.stream, s.log)
		return s, nil
	}
	if s.stream, err = s.js.CreateOrUpdateStream(ctx, s.streamConfig()); err != nil {
		s.Close()
		return nil, fmt.Errorf("create stream %s: %w", StreamName, err)
	}
	if s.checkpoints, err = s.js.CreateOrUpdateStream(ctx, s.checkpointStreamConfig()); err != nil {
		s.Close()
		return nil, fmt.Errorf("create stream %s: %w", CheckpointStreamName, err)
	}
	s.feed = newFeed(s.stream, s.log)
	if s.buckets > 0 {
		if err := s.openIndex(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// chooseLayout sets s.buckets from the existing stream, or from the
// configuration for a new one.
func (s *Store) chooseLayout(ctx context.Context) error {
	want := s.cfg.SubjectBuckets
	if want < 0 || want > MaxSubjectBuckets {
		return fmt.Errorf("subject buckets: %d is not between 0 and %d", want, MaxSubjectBuckets)
	}
	stream, err := s.js.Stream(ctx, StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) && !s.cfg.ReadOnly {
		s.buckets = uint32(want)
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", StreamName, err)
	}
	have := 0
	if v, ok := stream.CachedInfo().Config.Metadata[bucketsMetadata]; ok {
		if have, err = strconv.Atoi(v); err != nil || have < 1 || have > MaxSubjectBuckets {
			return fmt.Errorf("stream %s: metadata %s = %q is not a bucket count", StreamName, bucketsMetadata, v)
		}
	}
	if want != 0 && want != have {
		layout := "one subject per dossier"
		if have > 0 {
			layout = strconv.Itoa(have) + " subject buckets"
		}
		return fmt.Errorf("subject buckets: stream %s has %s, not %d; a stream's layout cannot change", StreamName, layout, want)
	}
	s.buckets = uint32(have)
	return nil
}

// openIndex builds the dossier index of a bucketed stream up to the
// stream's end, from its snapshot and the stream's tail when there is a
// usable snapshot, then keeps it following (and, with a snapshot file,
// writes one now and then).
func (s *Store) openIndex(ctx context.Context) error {
	start := time.Now()
	var x *dossierIndex
	if file := s.cfg.IndexSnapshot; file != "" {
		var err error
		x, err = s.loadIndexSnapshot(ctx)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("dossier index snapshot ignored; reading the whole stream", "file", file, "reason", err)
		}
	}
	if x == nil {
		x = newDossierIndex(s.buckets)
	}
	s.indexSnapshotSeq = x.applied
	if err := x.catchUp(ctx, s.stream); err != nil {
		return fmt.Errorf("dossier index: %w", err)
	}
	s.log.Info("dossier index built", "dossiers", x.len(), "buckets", s.buckets,
		"snapshot_seq", s.indexSnapshotSeq, "read_to_seq", x.applied, "seconds", time.Since(start).Seconds())
	followCtx, cancel := context.WithCancel(context.Background())
	s.index, s.stopIndex = x, cancel
	s.indexWG.Go(func() {
		if err := x.follow(followCtx, s); err != nil {
			s.log.Error("dossier index stopped following the stream; appends to buckets it has not seen will be refused as conflicts", "err", err)
		}
	})
	if s.cfg.IndexSnapshot != "" {
		interval := s.cfg.IndexSnapshotInterval
		if interval <= 0 {
			interval = DefaultIndexSnapshotInterval
		}
		s.indexWG.Go(func() { s.snapshotEvery(followCtx, interval) })
	}
	return nil
}

// Buckets returns the stream's number of bucket subjects, 0 when it has one
// subject per dossier.
func (s *Store) Buckets() int { return int(s.buckets) }

// SubjectOf returns the subject of a dossier's events: its own, or its
// bucket's.
func (s *Store) SubjectOf(code string) string {
	if s.buckets == 0 {
		return Subject(code)
	}
	return BucketSubject(BucketOf(code, s.buckets))
}

func (s *Store) streamConfig() jetstream.StreamConfig {
	description, metadata := "hoso ledger: dossier events, one subject per dossier", map[string]string(nil)
	if s.buckets > 0 {
		description = fmt.Sprintf("hoso ledger: dossier events in %d subject buckets", s.buckets)
		metadata = map[string]string{bucketsMetadata: strconv.Itoa(int(s.buckets))}
	}
	return jetstream.StreamConfig{
		Name:              StreamName,
		Description:       description,
		Metadata:          metadata,
		Subjects:          []string{SubjectPrefix + ">"},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		Replicas:          s.cfg.Replicas,
		Duplicates:        s.cfg.DuplicateWindow,
		MaxMsgsPerSubject: -1,
		MaxMsgs:           -1,
		MaxBytes:          s.maxBytes(),
		MaxMsgSize:        64 << 10,
		Discard:           jetstream.DiscardNew,
		DenyDelete:        true,
		DenyPurge:         true,
		AllowDirect:       s.directGets(),
	}
}

// directGets says whether the streams let any replica answer a message
// read (JetStream's direct get): only with one replica. A follower answers
// direct gets once it is nearly synchronised, not once it holds every
// acknowledged message, so a dossier loaded through it may lack the event
// another process appended a moment ago. An append from that state is
// refused by its expected sequence and read again, but a refusal by the
// state machine would not be: the event would be answered invalid although
// it was not (TestClusterFaults saw a supplement_received refused so, and
// the resolution after it stored without it). With more replicas every
// read goes to the stream's leader, which has every acknowledged message.
func (s *Store) directGets() bool { return s.cfg.Replicas <= 1 }

// maxBytes is the stream's MaxBytes: the configured cap, or -1 for none.
func (s *Store) maxBytes() int64 {
	if s.cfg.MaxBytes > 0 {
		return s.cfg.MaxBytes
	}
	return -1
}

func startServer(cfg Config) (*server.Server, serverKeys, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if cfg.Listen == "" {
		host, portStr, err = "127.0.0.1", "-1", nil
	}
	if err != nil {
		return nil, serverKeys{}, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, serverKeys{}, fmt.Errorf("nats listen address %q: bad port", cfg.Listen)
	}
	if port == 0 {
		port = -1
	}
	opts := &server.Options{
		ServerName: "hoso",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "nats"),
		NoSigs:     true,
		MaxPayload: 8 << 20,
	}
	if cfg.TLS != nil {
		opts.TLS, opts.TLSConfig = true, cfg.TLS.Clone()
	}
	keys, err := serverUsers(cfg.DataDir, opts)
	if err != nil {
		return nil, keys, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, serverKeys{}, fmt.Errorf("embedded NATS: %w", err)
	}
	srv.SetLoggerV2(&natsLogger{cfg.Logger}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, serverKeys{}, errors.New("embedded NATS did not become ready in 30s")
	}
	return srv, keys, nil
}

// connectCallout connects, in process, as the embedded server's callout
// user.
func connectCallout(srv *server.Server, kp nkeys.KeyPair) (*nats.Conn, error) {
	auth, err := nkeyOption(kp)
	if err != nil {
		return nil, err
	}
	// In process, as the ledger's own connection: no TLS.
	url := strings.Replace(srv.ClientURL(), "tls://", "nats://", 1)
	nc, err := nats.Connect(url, auth, nats.InProcessServer(srv), nats.Name("hoso-callout"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to the embedded NATS server for its callout: %w", err)
	}
	return nc, nil
}

// Close stops the followers' shared read, drains the connection and shuts
// the embedded server down.
func (s *Store) Close() error {
	if s.stopIndex != nil {
		s.stopIndex()
		s.indexWG.Wait()
		if s.cfg.IndexSnapshot != "" {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := s.writeIndexSnapshot(ctx); err != nil {
				s.log.Warn("dossier index snapshot not written; the next start reads the whole stream", "file", s.cfg.IndexSnapshot, "err", err)
			}
			cancel()
		}
	}
	if s.feed != nil {
		s.feed.close()
	}
	var err error
	if s.calloutConn != nil && s.calloutConn != s.nc {
		s.calloutConn.Close()
	}
	if s.nc != nil {
		if derr := s.nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
			err = derr
		}
		for !s.nc.IsClosed() {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
	if lerr := s.lock.release(); err == nil {
		err = lerr
	}
	s.lock = nil
	return err
}

// Conn returns the store's NATS connection.
func (s *Store) Conn() *nats.Conn { return s.nc }

// JetStream returns the store's JetStream context.
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// LedgerAuth returns the option that authenticates another connection as
// the ledger's own role (nil when the server needs no authentication).
func (s *Store) LedgerAuth() nats.Option {
	if s.ledgerAuth == nil {
		return func(*nats.Options) error { return nil }
	}
	return s.ledgerAuth
}

// DeskCredentials is the file holding the desk role's NKey seed on the
// embedded server, "" when connected to an external one.
func (s *Store) DeskCredentials() string {
	if s.srv == nil {
		return ""
	}
	return filepath.Join(s.cfg.DataDir, DeskKeyFile)
}

// LedgerCredentials is the file holding the ledger role's NKey seed on the
// embedded server, "" when connected to an external one.
func (s *Store) LedgerCredentials() string {
	if s.srv == nil {
		return ""
	}
	return filepath.Join(s.cfg.DataDir, LedgerKeyFile)
}

// DeskCallout returns the authorization callout that makes desk principals
// NATS users of this store's server, to be opened once tokens are; nil
// when the server has none (an external cluster without --nats-callout-key).
func (s *Store) DeskCallout(tokens *Tokens) *DeskCallout {
	if s.calloutIssuer == nil {
		return nil
	}
	return &DeskCallout{Conn: s.calloutConn, Tokens: tokens, Issuer: s.calloutIssuer, Account: s.calloutAccount, Logger: s.log}
}

// Server returns the embedded server, nil when connected to an external one.
func (s *Store) Server() *server.Server { return s.srv }

// ClientURL is where NATS clients reach the ledger's server.
func (s *Store) ClientURL() string {
	if s.srv != nil {
		return s.srv.ClientURL()
	}
	return s.nc.ConnectedUrl()
}

// errWrongLastSeq means another writer appended to the dossier first.
var errWrongLastSeq = errors.New("wrong last subject sequence")

// publish appends data as the next event of dossier code, expecting the
// dossier's last message to be lastSeq (0: no message yet). The id is the
// Msg-Id for JetStream's deduplication; an empty id publishes without one.
func (s *Store) publish(ctx context.Context, code, id string, lastSeq uint64, data []byte) (*jetstream.PubAck, error) {
	ack, err := s.js.PublishMsg(ctx, s.appendMsg(code, id, lastSeq, data))
	if err != nil {
		return nil, s.publishError(code, err)
	}
	s.stored()
	return ack, nil
}

// publishAsync is publish without waiting for the acknowledgement, so that
// a batch's events for different dossiers are in flight together. The
// future's error goes through publishError too.
func (s *Store) publishAsync(code, id string, lastSeq uint64, data []byte) (jetstream.PubAckFuture, error) {
	fut, err := s.js.PublishMsgAsync(s.appendMsg(code, id, lastSeq, data))
	if err != nil {
		return nil, s.publishError(code, err)
	}
	return fut, nil
}

func (s *Store) appendMsg(code, id string, lastSeq uint64, data []byte) *nats.Msg {
	// The header names are in canonical form already: set directly, not
	// through Header.Set, with one backing array for both values.
	values := [2]string{strconv.FormatUint(lastSeq, 10), id}
	header := nats.Header{jetstream.ExpectedLastSubjSeqHeader: values[0:1:1]}
	if id != "" {
		header[jetstream.MsgIDHeader] = values[1:2:2]
	}
	return &nats.Msg{Subject: s.SubjectOf(code), Data: data, Header: header}
}

// publishError turns JetStream's refusal of the expected sequence into
// errWrongLastSeq, which the ingester answers by re-reading the dossier, and
// its refusals for lack of space, or a stream that does not answer, into
// EUNAVAILABLE (503 at both doors): nothing of the event was stored, and the
// sender may retry it as it is once the operator has made room.
func (s *Store) publishError(code string, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return errWrongLastSeq
	}
	if cause, ok := storageRefusal(err); ok {
		if !s.full.Swap(true) { // once, not for every event of every retried batch
			s.log.Warn("stream full: events refused until there is room; nothing of them is stored", "stream", StreamName, "cause", cause)
		}
		return fmt.Errorf("append to %s: %w", s.SubjectOf(code), &hoso.Error{Code: hoso.EUNAVAILABLE, Message: "the ledger's storage is full: " +
			cause + "; the event was not stored; retry it once the operator has made room"})
	}
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("append to %s: %w", s.SubjectOf(code), &hoso.Error{Code: hoso.EUNAVAILABLE, Message: fmt.Sprintf(
			"the ledger's stream %s does not answer (JetStream down, without a leader, or stopped after its disk filled): the event was not stored; retry it", StreamName)})
	}
	return fmt.Errorf("append to %s: %w", s.SubjectOf(code), err)
}

// JetStream's error codes for a message refused for lack of space
// (nats-server's JSStreamStoreFailedF, JSInsufficientResourcesErr,
// JSStorageResourcesExceededErr, JSAccountResourcesExceededErr).
const (
	errCodeStoreFailed         = 10077
	errCodeInsufficient        = 10023
	errCodeStorageExceeded     = 10047
	errCodeAccountLimitReached = 10002
)

// storageRefusal reports whether JetStream refused a message because the
// stream, the server's store or the account is full, and says which.
func storageRefusal(err error) (string, bool) {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return "", false
	}
	switch apiErr.ErrorCode {
	case errCodeStoreFailed:
		// The stream's own limits; the same code also answers a message
		// too large, which is not a full stream.
		if d := apiErr.Description; strings.Contains(d, "maximum bytes") || strings.Contains(d, "maximum messages exceeded") {
			return "stream " + StreamName + " reached its limit (" + d + ")", true
		}
	case errCodeInsufficient:
		return "the NATS server's JetStream storage is full (" + apiErr.Description + ")", true
	case errCodeStorageExceeded, errCodeAccountLimitReached:
		return "the account's JetStream storage limit is reached (" + apiErr.Description + ")", true
	}
	return "", false
}

// StorageFull reports whether the stream's last refusal of an append was
// for lack of space and no append was stored since (hoso_stream_storage_full).
func (s *Store) StorageFull() bool { return s.full.Load() }

// stored notes an append the stream stored: there is room again.
func (s *Store) stored() {
	if s.full.Load() && s.full.Swap(false) {
		s.log.Info("stream takes events again", "stream", StreamName)
	}
}

// Msg returns the message at seq.
func (s *Store) Msg(ctx context.Context, seq uint64) (hoso.LedgerEntry, error) {
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return hoso.LedgerEntry{}, hoso.Errorf(hoso.ENOTFOUND, "no event at seq %d", seq)
		}
		return hoso.LedgerEntry{}, fmt.Errorf("get seq %d: %w", seq, err)
	}
	return hoso.LedgerEntry{Seq: m.Sequence, Time: m.Time, Data: m.Data}, nil
}

var _ hoso.DossierHistory = (*Store)(nil)

// LoadDossier returns a dossier's events in order; none if it does not exist.
func (s *Store) LoadDossier(ctx context.Context, code string) ([]*hoso.Event, error) {
	if s.buckets > 0 {
		entries, err := s.bucketEntries(ctx, code)
		if err != nil {
			return nil, err
		}
		events := make([]*hoso.Event, len(entries))
		for i, m := range entries {
			if events[i], err = m.Event(); err != nil {
				return nil, err
			}
		}
		return events, nil
	}
	subj := Subject(code)
	last, err := s.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load dossier %q: %w", code, err)
	}
	lastEvent, err := hoso.LedgerEntry{Seq: last.Sequence, Data: last.Data}.Event()
	if err != nil {
		return nil, err
	}
	if lastEvent.Version == 1 {
		return []*hoso.Event{lastEvent}, nil
	}
	events := make([]*hoso.Event, 0, lastEvent.Version)
	for seq := uint64(1); seq < last.Sequence; {
		m, err := s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if err != nil {
			return nil, fmt.Errorf("load dossier %q from seq %d: %w", code, seq, err)
		}
		if m.Sequence >= last.Sequence {
			break
		}
		e, err := hoso.LedgerEntry{Seq: m.Sequence, Data: m.Data}.Event()
		if err != nil {
			return nil, err
		}
		events = append(events, e)
		seq = m.Sequence + 1
	}
	return append(events, lastEvent), nil
}

// LastSeq returns the stream's last sequence.
func (s *Store) LastSeq(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// readBatch is how many messages a read asks the server for at a time.
const readBatch = 4096

// Read calls fn for every message from seq from up to the stream's last
// sequence at the time of the call, in order. With follow it goes on with
// new messages until ctx is done (then it returns ctx.Err()): every follower
// in the process shares the store's one read of the new messages (see
// feed), so an entry's Data may be handed to several; fn must not change it.
func (s *Store) Read(ctx context.Context, from uint64, follow bool, fn func(hoso.LedgerEntry) error) error {
	if follow {
		return s.feed.follow(ctx, from, fn)
	}
	return readStream(ctx, s.stream, from, 0, readBatch, fn)
}

// readStream reads stream with an ordered consumer from seq from up to seq
// to, or with to 0 up to its last sequence at the time of the call.
func readStream(ctx context.Context, stream jetstream.Stream, from, to uint64, batch int, fn func(hoso.LedgerEntry) error) error {
	name := stream.CachedInfo().Config.Name
	if from == 0 {
		from = 1
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	last := info.State.LastSeq
	if to != 0 {
		last = min(last, to)
	}
	if last < from {
		return nil
	}
	if n := last - from + 1; n < uint64(batch) {
		batch = int(n)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
	})
	if err != nil {
		return fmt.Errorf("read %s from seq %d: %w", name, from, err)
	}
	defer deleteConsumer(ctx, stream, cons)
	// Stop at the end even when the last messages were deleted (an
	// administrator's doing), rather than wait for them.
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(batch))
	if err != nil {
		return fmt.Errorf("read %s from seq %d: %w", name, from, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read %s: %w", name, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		seq := meta.Sequence.Stream
		if seq > last {
			return nil // the messages up to last were deleted
		}
		if err := fn(hoso.LedgerEntry{Seq: seq, Time: meta.Timestamp, Data: msg.Data()}); err != nil {
			return err
		}
		if seq == last || meta.NumPending == 0 {
			return nil
		}
	}
}

// deleteConsumer removes a finished read's consumer from the server at
// once rather than after its inactivity threshold (five minutes), so that
// reads leave no consumers for the server to keep and signal meanwhile.
func deleteConsumer(ctx context.Context, stream jetstream.Stream, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// Best effort: the server drops it after the threshold anyway.
	_ = stream.DeleteConsumer(ctx, info.Name)
}

// natsLogger sends the embedded server's log lines to slog.
type natsLogger struct{ log *slog.Logger }

func (l *natsLogger) Noticef(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (l *natsLogger) Warnf(format string, v ...any) { l.log.Warn("nats: " + fmt.Sprintf(format, v...)) }
func (l *natsLogger) Fatalf(format string, v ...any) {
	l.log.Error("nats: " + fmt.Sprintf(format, v...))
}
func (l *natsLogger) Errorf(format string, v ...any) {
	l.log.Error("nats: " + fmt.Sprintf(format, v...))
}
func (l *natsLogger) Debugf(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (l *natsLogger) Tracef(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
