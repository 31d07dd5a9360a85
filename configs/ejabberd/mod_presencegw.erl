%%% mod_presencegw: the presence overlay of docs/overlay-protocol.md
%%% (urn:presencegw:overlay:0) for ejabberd 23.01.
%%%
%%% A configured component (option `access`) asks the user's virtual host
%%% to show a calendar state (dnd/away/xa + text) in the presence that the
%%% user's roster contacts receive from each of the user's own resources.
%%% The overlay is applied in the global filter_packet hook, on the way out,
%%% so the user's sessions keep their own presence (pres_last) untouched.
%%%
%%% Options:
%%%   access: access rule naming the components allowed to send requests
%%%           (default none: nobody).
%%%   grace_period: how long a component may stay disconnected before its
%%%           overlays are withdrawn (default 120 seconds).
%%%   scheduled: take scheduled overlays (the `since` attribute, disco
%%%           feature urn:presencegw:overlay:0#since; default true). false
%%%           behaves as a module from before them: `since` is ignored.
%%%
%%% State lives in mnesia ram_copies tables (presencegw_overlay, and
%%% presencegw_pending for the one scheduled overlay per person), local to
%%% this node; an ejabberd restart loses it, as the protocol says.
-module(mod_presencegw).
-behaviour(gen_mod).
-behaviour(gen_server).

%% gen_mod
-export([start/2, stop/1, reload/3, depends/2, mod_opt_type/1,
         mod_options/1, mod_doc/0]).
%% gen_server
-export([init/1, handle_call/3, handle_cast/2, handle_info/2,
         terminate/2, code_change/3]).
%% hooks and handlers
-export([process_iq/1, decode_iq_subel/1, filter_packet/1,
         disco_features/5, component_connected/1, c2s_handle_info/2,
         component_disconnected/2, remove_user/2, unset_presence/4]).

-include("logger.hrl").
-include("xmpp.hrl").

-define(NS, <<"urn:presencegw:overlay:0">>).
-define(TAB, presencegw_overlay).
-define(PTAB, presencegw_pending).
-define(NS_SINCE, <<"urn:presencegw:overlay:0#since">>).
-define(MAX_STATUS, 1024).
%% erlang:send_after/3 takes at most 2^32-1 ms; a far `until` is
%% re-armed in steps of a day.
-define(MAX_TIMER, 86400000).
-define(CALL_TIMEOUT, 10000).

-record(presencegw_overlay,
        {us :: {binary(), binary()},   % the person: {LUser, LServer}
         owner :: binary(),            % the component that set it
         show :: dnd | away | xa,
         status = <<>> :: binary(),
         until :: undefined | integer(),   % ms since the epoch
         timer :: undefined | reference()}).

%% A scheduled overlay: promoted to a presencegw_overlay at `since`.
-record(presencegw_pending,
        {us :: {binary(), binary()},
         owner :: binary(),
         show :: dnd | away | xa,
         status = <<>> :: binary(),
         until :: undefined | integer(),
         since :: integer(),               % ms since the epoch
         timer :: undefined | reference()}).

-record(state, {host :: binary(),
                grace = #{} :: #{binary() => reference()}}).

%%%===================================================================
%%% gen_mod
%%%===================================================================
start(Host, Opts) ->
    gen_mod:start_child(?MODULE, Host, Opts).

stop(Host) ->
    gen_mod:stop_child(?MODULE, Host).

reload(_Host, _NewOpts, _OldOpts) ->
    ok.   % access, grace_period and scheduled are read when used

depends(_Host, _Opts) ->
    [{mod_roster, soft}].

mod_opt_type(access) -> econf:acl();
mod_opt_type(grace_period) -> econf:timeout(second);
mod_opt_type(scheduled) -> econf:bool().

mod_options(_Host) ->
    [{access, none}, {grace_period, timer:seconds(120)}, {scheduled, true}].

mod_doc() ->
    #{desc => ["Presence overlay for a calendar gateway component "
               "(urn:presencegw:overlay:0)."],
      opts => [{access, #{value => "AccessName",
                          desc => "Components allowed to set overlays."}},
               {grace_period, #{value => "timeout()",
                                desc => "Component absence before its "
                                        "overlays are withdrawn."}},
               {scheduled, #{value => "true | false",
                             desc => "Take scheduled overlays (since)."}}]}.

%%%===================================================================
%%% gen_server: one per virtual host; it serialises every change of that
%%% host's overlays and owns their timers.
%%%===================================================================
init([Host, _Opts]) ->
    process_flag(trap_exit, true),
    ejabberd_mnesia:create(?MODULE, ?TAB,
                           [{ram_copies, [node()]},
                            {attributes,
                             record_info(fields, presencegw_overlay)}]),
    ejabberd_mnesia:create(?MODULE, ?PTAB,
                           [{ram_copies, [node()]},
                            {attributes,
                             record_info(fields, presencegw_pending)}]),
    %% Global hooks: ejabberd_hooks:add ignores a duplicate, so every
    %% host adding them is harmless; they are removed with the last host.
    ejabberd_hooks:add(filter_packet, ?MODULE, filter_packet, 50),
    ejabberd_hooks:add(component_connected, ?MODULE,
                       component_connected, 50),
    ejabberd_hooks:add(component_disconnected, ?MODULE,
                       component_disconnected, 50),
    ejabberd_hooks:add(disco_local_features, Host, ?MODULE,
                       disco_features, 50),
    ejabberd_hooks:add(remove_user, Host, ?MODULE, remove_user, 50),
    ejabberd_hooks:add(c2s_handle_info, Host, ?MODULE, c2s_handle_info, 50),
    ejabberd_hooks:add(unset_presence_hook, Host, ?MODULE, unset_presence, 50),
    gen_iq_handler:add_iq_handler(ejabberd_local, Host, ?NS, ?MODULE,
                                  process_iq),
    ?INFO_MSG("mod_presencegw started for ~ts", [Host]),
    {ok, #state{host = Host}}.

handle_call({set, US, Owner, Show, Status, Until}, _From, State) ->
    set(US, Owner, Show, Status, Until),
    {reply, ok, State};
handle_call({clear, US}, _From, State) ->
    clear(US),
    {reply, ok, State};
handle_call({schedule, US, Owner, Show, Status, Until, Since}, _From, State) ->
    cancel_pending(US),
    mnesia:dirty_write(#presencegw_pending{us = US, owner = Owner,
                                           show = Show, status = Status,
                                           until = Until, since = Since,
                                           timer = arm_since(US, Since)}),
    {reply, ok, State};
handle_call({cancel, US}, _From, State) ->
    cancel_pending(US),
    {reply, ok, State};
handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

handle_cast({component_down, Comp}, #state{host = Host} = State) ->
    State1 = cancel_grace(Comp, State),
    case owned(Host, Comp) ++ owned_pending(Host, Comp) of
        [] ->
            {noreply, State1};
        _ ->
            Ms = gen_mod:get_module_opt(Host, ?MODULE, grace_period),
            TRef = erlang:start_timer(Ms, self(), {grace_expired, Comp}),
            {noreply, State1#state{grace = maps:put(Comp, TRef,
                                                    State1#state.grace)}}
    end;
handle_cast({component_up, Comp}, State) ->
    {noreply, cancel_grace(Comp, State)};
handle_cast(_Msg, State) ->
    {noreply, State}.

handle_info({timeout, Timer, {expire, US}}, State) ->
    case mnesia:dirty_read(?TAB, US) of
        [#presencegw_overlay{timer = Timer, until = Until} = O] ->
            case Until - now_ms() of
                Left when Left > 0 ->   % a far `until`, re-armed daily
                    mnesia:dirty_write(O#presencegw_overlay{
                                         timer = arm_expiry(US, Until)});
                _ ->
                    ?DEBUG("mod_presencegw: overlay of ~ts@~ts expired",
                           [element(1, US), element(2, US)]),
                    %% A scheduled overlay due now (back-to-back meetings)
                    %% takes over without the person's own presence
                    %% flashing in between.
                    case mnesia:dirty_read(?PTAB, US) of
                        [#presencegw_pending{since = Since} = P]
                          when Since =< Until ->
                            promote(US, P);
                        _ ->
                            clear(US)
                    end
            end;
        _ ->
            ok   % replaced or cleared meanwhile
    end,
    {noreply, State};
handle_info({timeout, Timer, {promote, US}}, State) ->
    case mnesia:dirty_read(?PTAB, US) of
        [#presencegw_pending{timer = Timer, since = Since} = P] ->
            case Since - now_ms() of
                Left when Left > 0 ->   % a far `since`, re-armed daily
                    mnesia:dirty_write(P#presencegw_pending{
                                         timer = arm_since(US, Since)});
                _ ->
                    promote(US, P)
            end;
        _ ->
            ok   % replaced or cancelled meanwhile
    end,
    {noreply, State};
handle_info({timeout, TRef, {grace_expired, Comp}},
            #state{host = Host, grace = Grace} = State) ->
    case maps:get(Comp, Grace, undefined) of
        TRef ->
            State1 = State#state{grace = maps:remove(Comp, Grace)},
            case ejabberd_router:is_my_route(Comp) of
                true ->
                    ok;   % back again (the connect hook raced the timer)
                false ->
                    Owned = owned(Host, Comp),
                    ?INFO_MSG("mod_presencegw: component ~ts gone for longer "
                              "than the grace period; withdrawing its ~B "
                              "overlay(s) on ~ts", [Comp, length(Owned), Host]),
                    lists:foreach(fun(#presencegw_overlay{us = US}) ->
                                          clear(US)
                                  end, Owned),
                    lists:foreach(fun(#presencegw_pending{us = US}) ->
                                          cancel_pending(US)
                                  end, owned_pending(Host, Comp))
            end,
            {noreply, State1};
        _ ->
            {noreply, State}   % cancelled, or superseded by a newer timer
    end;
handle_info(_Info, State) ->
    {noreply, State}.

terminate(_Reason, #state{host = Host}) ->
    gen_iq_handler:remove_iq_handler(ejabberd_local, Host, ?NS),
    ejabberd_hooks:delete(disco_local_features, Host, ?MODULE,
                          disco_features, 50),
    ejabberd_hooks:delete(remove_user, Host, ?MODULE, remove_user, 50),
    ejabberd_hooks:delete(c2s_handle_info, Host, ?MODULE, c2s_handle_info, 50),
    ejabberd_hooks:delete(unset_presence_hook, Host, ?MODULE, unset_presence, 50),
    case gen_mod:is_loaded_elsewhere(Host, ?MODULE) of
        false ->
            ejabberd_hooks:delete(filter_packet, ?MODULE, filter_packet, 50),
            ejabberd_hooks:delete(component_connected, ?MODULE,
                                  component_connected, 50),
            ejabberd_hooks:delete(component_disconnected, ?MODULE,
                                  component_disconnected, 50);
        true ->
            ok
    end,
    %% Unloading the module withdraws this host's overlays, so contacts
    %% get the users' own presence back. c2s_handle_info/2 is gone by
    %% now, so the sessions re-send through ejabberd_c2s itself.
    case catch mnesia:dirty_match_object(
                 #presencegw_overlay{us = {'_', Host}, _ = '_'}) of
        Rows when is_list(Rows) ->
            lists:foreach(fun(#presencegw_overlay{us = US}) ->
                                  catch mnesia:dirty_delete(?TAB, US),
                                  catch resend_to_contacts(US)
                          end, Rows);
        _ ->
            ok   % mnesia already gone (the node is stopping)
    end,
    case catch mnesia:dirty_match_object(
                 #presencegw_pending{us = {'_', Host}, _ = '_'}) of
        Pending when is_list(Pending) ->
            [catch mnesia:dirty_delete(?PTAB, US)
             || #presencegw_pending{us = US} <- Pending];
        _ ->
            ok
    end,
    ok.

code_change(_OldVsn, State, _Extra) ->
    {ok, State}.

%%%===================================================================
%%% Requests
%%%===================================================================
%% gen_iq_handler would otherwise run xmpp:decode/1 on our unknown
%% namespace and answer bad-request; keep the element as it is.
decode_iq_subel(El) ->
    El.

process_iq(#iq{from = From, to = #jid{lserver = Host}, lang = Lang} = IQ) ->
    case authorised(Host, From) of
        false ->
            xmpp:make_error(IQ, xmpp:err_forbidden(<<"Not authorised">>,
                                                   Lang));
        true ->
            try request(Host, From#jid.lserver, IQ)
            catch throw:{iq_error, Err} -> xmpp:make_error(IQ, Err)
            end
    end.

request(Host, Owner, #iq{type = set, lang = Lang,
                         sub_els = [#xmlel{name = <<"overlay">>} = El]} = IQ) ->
    US = person(Host, El, Lang),
    Show = case fxml:get_tag_attr_s(<<"show">>, El) of
               <<"dnd">> -> dnd;
               <<"away">> -> away;
               <<"xa">> -> xa;
               _ -> bad_request(<<"Bad 'show': want dnd, away or xa">>, Lang)
           end,
    Until = case fxml:get_tag_attr(<<"until">>, El) of
                false -> undefined;
                {value, U} -> parse_until(U, Lang)
            end,
    Since = case fxml:get_tag_attr(<<"since">>, El) of
                {value, Si} ->
                    case gen_mod:get_module_opt(Host, ?MODULE, scheduled) of
                        true -> parse_time(<<"since">>, Si, Lang);
                        false -> undefined   % as a module without it
                    end;
                false -> undefined
            end,
    case Since /= undefined andalso Until /= undefined andalso Until =< Since of
        true -> bad_request(<<"Bad 'until': not after 'since'">>, Lang);
        false -> ok
    end,
    Status = case fxml:get_subtag(El, <<"status">>) of
                 false -> <<>>;
                 S -> fxml:get_tag_cdata(S)
             end,
    case length(unicode:characters_to_list(Status)) of
        N when N > ?MAX_STATUS ->
            bad_request(<<"Bad 'status': longer than 1024 characters">>, Lang);
        _ ->
            ok
    end,
    user_must_exist(US, Lang),
    Now = now_ms(),
    Req = if Since /= undefined, Since > Now ->
                  {schedule, US, Owner, Show, Status, Until, Since};
             Until == undefined ->
                  {set, US, Owner, Show, Status, Until};
             Until =< Now ->
                  {clear, US};   % already passed: a clear
             true ->
                  {set, US, Owner, Show, Status, Until}
          end,
    ok = gen_server:call(proc(Host), Req, ?CALL_TIMEOUT),
    xmpp:make_iq_result(IQ);
request(Host, _Owner, #iq{type = set, lang = Lang,
                          sub_els = [#xmlel{name = <<"clear">>} = El]} = IQ) ->
    US = person(Host, El, Lang),
    Req = case fxml:get_tag_attr_s(<<"scheduled">>, El) of
              B when B == <<"true">>; B == <<"1">> -> {cancel, US};
              B when B == <<"false">>; B == <<"0">>; B == <<>> -> {clear, US};
              _ -> bad_request(<<"Bad 'scheduled': want a boolean">>, Lang)
          end,
    user_must_exist(US, Lang),
    ok = gen_server:call(proc(Host), Req, ?CALL_TIMEOUT),
    xmpp:make_iq_result(IQ);
request(Host, Owner, #iq{type = get,
                         sub_els = [#xmlel{name = <<"overlays">>}]} = IQ) ->
    Items = lists:map(fun encode_overlay/1,
                      lists:keysort(#presencegw_overlay.us, owned(Host, Owner)))
        ++ lists:map(fun encode_pending/1,
                     lists:keysort(#presencegw_pending.us,
                                   owned_pending(Host, Owner))),
    xmpp:make_iq_result(IQ, #xmlel{name = <<"overlays">>,
                                   attrs = [{<<"xmlns">>, ?NS}],
                                   children = Items});
request(_Host, _Owner, #iq{type = Type, lang = Lang,
                           sub_els = [#xmlel{name = Name}]}) ->
    Txt = case lists:member(Name, [<<"overlay">>, <<"clear">>, <<"overlays">>]) of
              true -> <<"<", Name/binary, "/> is not an IQ ",
                        (atom_to_binary(Type, utf8))/binary>>;
              false -> <<"Unknown request <", Name/binary, "/>">>
          end,
    throw({iq_error, xmpp:err_feature_not_implemented(Txt, Lang)}).

%% The bare JID of the `jid` attribute, which must be on Host.
person(Host, El, Lang) ->
    J = try jid:decode(fxml:get_tag_attr_s(<<"jid">>, El))
        catch _:_ -> bad_request(<<"Bad 'jid'">>, Lang)
        end,
    case J of
        #jid{luser = U, lserver = Host, lresource = <<>>} when U /= <<>> ->
            {U, Host};
        _ ->
            bad_request(<<"Bad 'jid': want a bare JID on this host">>, Lang)
    end.

user_must_exist({U, S}, Lang) ->
    case ejabberd_auth:user_exists(U, S) of
        true -> ok;
        false -> throw({iq_error, xmpp:err_item_not_found(
                                    <<"No such user">>, Lang)})
    end.

parse_until(Bin, Lang) ->
    parse_time(<<"until">>, Bin, Lang).

parse_time(Name, Bin, Lang) ->
    try xmpp_util:decode_timestamp(Bin) of
        {Mega, Sec, Micro} -> (Mega * 1000000 + Sec) * 1000 + Micro div 1000
    catch _:_ ->
        bad_request(<<"Bad '", Name/binary, "': want an XEP-0082 date-time">>,
                    Lang)
    end.

bad_request(Txt, Lang) ->
    throw({iq_error, xmpp:err_bad_request(Txt, Lang)}).

encode_overlay(#presencegw_overlay{us = {U, S}, show = Show,
                                   status = Status, until = Until}) ->
    UntilAttr = case Until of
                    undefined -> [];
                    _ -> [{<<"until">>, format_time(Until)}]
                end,
    #xmlel{name = <<"overlay">>,
           attrs = [{<<"jid">>, jid:encode({U, S, <<>>})},
                    {<<"show">>, atom_to_binary(Show, utf8)} | UntilAttr],
           children = [#xmlel{name = <<"status">>, attrs = [],
                              children = [{xmlcdata, Status}]}
                       || Status /= <<>>]}.

encode_pending(#presencegw_pending{us = US, show = Show, status = Status,
                                   until = Until, since = Since}) ->
    #xmlel{attrs = Attrs} = El =
        encode_overlay(#presencegw_overlay{us = US, show = Show,
                                           status = Status, until = Until}),
    El#xmlel{attrs = Attrs ++ [{<<"since">>, format_time(Since)}]}.

format_time(Ms) when Ms rem 1000 == 0 ->
    list_to_binary(calendar:system_time_to_rfc3339(
                     Ms div 1000, [{unit, second}, {offset, "Z"}]));
format_time(Ms) ->
    list_to_binary(calendar:system_time_to_rfc3339(
                     Ms, [{unit, millisecond}, {offset, "Z"}])).

%% A session that ends without sending unavailable (stream closed, connection
%% lost) goes offline without passing user_send_packet, so mod_privilege
%% 23.01 never tells the component: tell the authorised components here, so
%% the gateway does not keep a person online who left.
unset_presence(User, Server, Resource, _Status) ->
    From = jid:make(User, Server, Resource),
    Hosts = ejabberd_option:hosts(),
    lists:foreach(
      fun(Route) ->
              To = jid:make(Route),
              case lists:member(Route, Hosts) orelse not authorised(Server, To) of
                  true -> ok;
                  false -> ejabberd_router:route(
                             #presence{type = unavailable, from = From, to = To})
              end
      end, ejabberd_router:get_all_routes()),
    ok.

%% The sender must be a bare domain JID (a component) matching `access`.
authorised(Host, #jid{luser = <<>>, lresource = <<>>} = From) ->
    Access = gen_mod:get_module_opt(Host, ?MODULE, access),
    acl:match_rule(Host, Access, From) == allow;
authorised(_Host, _From) ->
    false.

%%%===================================================================
%%% The rewrite (docs/overlay-protocol.md, "What is overlaid")
%%%===================================================================
%% Cheap pattern checks first, then the overlay row, then the session,
%% and the roster lookup last.
filter_packet(#presence{type = available, show = Show,
                        from = #jid{luser = U, lserver = S,
                                    lresource = R},
                        to = #jid{luser = ToU, lserver = ToS} = To} = Pres)
  when U /= <<>>, R /= <<>>,                          % rule 1: a session
       Show == undefined orelse Show == chat,         % rule 4
       not (ToU == U andalso ToS == S) ->             % rule 3
    try mnesia:dirty_read(?TAB, {U, S}) of
        [] ->
            Pres;
        [O] ->
            case is_component(S, To)
                orelse ejabberd_sm:get_session_pid(U, S, R) == none
                orelse not is_contact(U, S, To) of   % rule 2
                true -> Pres;
                false -> overlay(Pres, O)
            end
    catch _:_ ->
        Pres   % table not there (module stopping): never block routing
    end;
filter_packet(Acc) ->
    Acc.

%% The XEP-0356 copy goes to the component; never touch it.
is_component(Host, #jid{luser = <<>>} = To) ->
    authorised(Host, jid:remove_resource(To));
is_component(_Host, _To) ->
    false.

%% The roster_get_jid_info hook (mod_roster, and mod_shared_roster where
%% loaded) gives the subscription of To in the sender's roster.
is_contact(U, S, To) ->
    {Sub, _Ask, _Groups} =
        ejabberd_hooks:run_fold(roster_get_jid_info, S, {none, none, []},
                                [U, S, To]),
    Sub == from orelse Sub == both.

overlay(Pres, #presencegw_overlay{show = Show, status = Status}) ->
    Texts = case Status of
                <<>> -> [];
                _ -> [#text{data = Status}]
            end,
    Pres#presence{show = Show, status = Texts}.

%%%===================================================================
%%% Re-broadcast
%%%===================================================================
%% Each of the person's sessions is asked to re-send its last presence (as
%% the client sent it, pres_last) to its from/both roster contacts. The
%% session does it in c2s_handle_info/2 below, in its own process, as its
%% own broadcast does (ejabberd_c2s:broadcast_presence_available/3): the
%% same roster, the same privacy check (a blocked contact is skipped
%% silently), the same multicast route, through filter_packet, so each
%% contact gets it with or without the overlay as the table now says. The
%% person's own resources (their bare JID) are left out, and no
%% user_send_packet hook runs, so the XEP-0356 feed gets nothing either.
rebroadcast({U, S}) ->
    lists:foreach(fun({_, Pid}) -> ejabberd_cluster:send(Pid, ?MODULE) end,
                  ejabberd_sm:get_session_sids(U, S)).

%% The same without the hook, for terminate/2: ejabberd_c2s routes the
%% last presence to each contact as directed presence. Unlike the above, a
%% contact the person blocked gets the session a not-acceptable error.
resend_to_contacts({U, S}) ->
    Items = ejabberd_hooks:run_fold(roster_get, S, [], [{U, S}]),
    Tos = [To || #roster_item{jid = To, subscription = Sub} <- Items,
                 Sub == from orelse Sub == both,
                 not (To#jid.luser == U andalso To#jid.lserver == S)],
    lists:foreach(fun({_, Pid}) ->
                          [ejabberd_c2s:resend_presence(Pid, To) || To <- Tos]
                  end, ejabberd_sm:get_session_sids(U, S)).

c2s_handle_info(#{jid := #jid{luser = U, lserver = S} = JID,
                  pres_last := #presence{type = available} = Pres} = State,
                ?MODULE) ->
    Items = ejabberd_hooks:run_fold(roster_get, S, [], [{U, S}]),
    Tos = [To || #roster_item{jid = To, subscription = Sub} <- Items,
                 Sub == from orelse Sub == both,
                 not (To#jid.luser == U andalso To#jid.lserver == S),
                 ejabberd_hooks:run_fold(privacy_check_packet, S, allow,
                                         [State, xmpp:set_to(Pres, To), out])
                     == allow],
    ejabberd_router_multicast:route_multicast(JID, S, Tos, Pres, false),
    {stop, State};
c2s_handle_info(State, ?MODULE) ->
    {stop, State};   % no presence sent yet: nothing to re-send
c2s_handle_info(State, _Info) ->
    State.

%% Make the person's overlay this one now (replacing any) and re-broadcast.
set(US, Owner, Show, Status, Until) ->
    cancel_row_timer(US),
    Timer = case Until of
                undefined -> undefined;
                _ -> arm_expiry(US, Until)
            end,
    mnesia:dirty_write(#presencegw_overlay{us = US, owner = Owner,
                                           show = Show, status = Status,
                                           until = Until, timer = Timer}),
    rebroadcast(US).

%% At `since` a scheduled overlay becomes exactly what a set at that
%% moment would have made (an `until` passed meanwhile: a clear).
promote(US, #presencegw_pending{owner = Owner, show = Show, status = Status,
                                until = Until}) ->
    cancel_pending(US),
    case Until /= undefined andalso Until =< now_ms() of
        true -> clear(US);
        false -> set(US, Owner, Show, Status, Until)
    end.

cancel_pending(US) ->
    case mnesia:dirty_read(?PTAB, US) of
        [#presencegw_pending{timer = TRef}] ->
            is_reference(TRef) andalso erlang:cancel_timer(TRef),
            mnesia:dirty_delete(?PTAB, US);
        [] ->
            ok
    end.

clear(US) ->
    case mnesia:dirty_read(?TAB, US) of
        [] ->
            ok;
        [_] ->
            cancel_row_timer(US),
            mnesia:dirty_delete(?TAB, US),
            rebroadcast(US)
    end.

%%%===================================================================
%%% Hooks
%%%===================================================================
disco_features({error, _} = Acc, _From, _To, _Node, _Lang) ->
    Acc;
disco_features(Acc, _From, #jid{lserver = Host}, <<"">>, _Lang) ->
    Fs = case Acc of
             {result, Features} -> Features;
             empty -> []
         end,
    case gen_mod:get_module_opt(Host, ?MODULE, scheduled) of
        true -> {result, [?NS, ?NS_SINCE | Fs]};
        false -> {result, [?NS | Fs]}
    end;
disco_features(Acc, _From, _To, _Node, _Lang) ->
    Acc.

%% Global hooks from ejabberd_service, run with the component's domain.
component_connected(Comp) ->
    each_host({component_up, Comp}).

component_disconnected(Comp, _Reason) ->
    each_host({component_down, Comp}).

remove_user(User, Server) ->
    US = {jid:nodeprep(User), jid:nameprep(Server)},
    catch gen_server:call(proc(element(2, US)), {clear, US}, ?CALL_TIMEOUT),
    catch gen_server:call(proc(element(2, US)), {cancel, US}, ?CALL_TIMEOUT),
    ok.

%%%===================================================================
%%% Helpers
%%%===================================================================
proc(Host) ->
    gen_mod:get_module_proc(Host, ?MODULE).

each_host(Msg) ->
    lists:foreach(fun(H) ->
                          case gen_mod:is_loaded(H, ?MODULE) of
                              true -> gen_server:cast(proc(H), Msg);
                              false -> ok
                          end
                  end, ejabberd_option:hosts()).

owned(Host, Comp) ->
    mnesia:dirty_match_object(#presencegw_overlay{us = {'_', Host},
                                                  owner = Comp, _ = '_'}).

owned_pending(Host, Comp) ->
    mnesia:dirty_match_object(#presencegw_pending{us = {'_', Host},
                                                  owner = Comp, _ = '_'}).

%% The row keeps the timer's reference: a timer that fires for a row
%% replaced meanwhile finds another reference and does nothing.
arm_expiry(US, Until) ->
    Ms = max(0, min(Until - now_ms(), ?MAX_TIMER)),
    erlang:start_timer(Ms, self(), {expire, US}).

arm_since(US, Since) ->
    Ms = max(0, min(Since - now_ms(), ?MAX_TIMER)),
    erlang:start_timer(Ms, self(), {promote, US}).

cancel_row_timer(US) ->
    case mnesia:dirty_read(?TAB, US) of
        [#presencegw_overlay{timer = TRef}] when is_reference(TRef) ->
            erlang:cancel_timer(TRef),
            ok;
        _ ->
            ok
    end.

cancel_grace(Comp, #state{grace = G} = State) ->
    case maps:take(Comp, G) of
        {TRef, G1} ->
            erlang:cancel_timer(TRef),
            State#state{grace = G1};
        error ->
            State
    end.

now_ms() ->
    erlang:system_time(millisecond).
